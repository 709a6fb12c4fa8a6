#!/usr/bin/env bash
# Checks the CUDA kernels on a real GPU (CI has none; every kernel is also proven under emulation by ./melfusion test):
#   1. builds everything: the fatbins (nvcc), the emulator, the C# projects and the timing harness;
#   2. runs every kernel family's fixture tests on the cuda backend (MELFUSION_TEST_BACKENDS=cuda), with cuBLAS and
#      again with MatMul/Linear on kernels/gemm.cu (MELFUSION_CUBLAS=0), plus the cuda backend's own tests (graph capture);
#   3. runs those tests under compute-sanitizer: memcheck (out-of-bounds and misaligned accesses, leaks) and racecheck
#      (shared-memory hazards, i.e. a missing __syncthreads);
#   4. times each kernel (tools/KernelTiming: CUDA graphs replayed between events) and prints GB/s or TFLOP/s as a
#      fraction of the GPU's peak (from cuDeviceGetAttribute: SM count, clocks, memory bus width).
# Usage: scripts/gpu-check.sh [replays]      Exits non-zero on the first failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
REPLAYS="${1:-50}"

log() { printf '\033[1m[gpu-check]\033[0m %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

for tool in nvcc cmake dotnet compute-sanitizer; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not on PATH (install the CUDA toolkit, cmake and the .NET 10 SDK)"
done
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi -L; else fail "nvidia-smi not found: no NVIDIA driver"; fi

log "building the fatbins, the emulator and the C# projects"
cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/native -j"$(nproc)"
compgen -G "build/kernels/*.fatbin" >/dev/null || fail "nvcc produced no build/kernels/*.fatbin"
dotnet build MeLFusion.Native.sln -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet build tools/KernelTiming -c Release -nologo -v quiet -clp:ErrorsOnly

# The test classes of every op family with CUDA kernels, the CUDA backend's own tests and the cuBLAS mapping tests.
FAMILIES=(ElementwiseTests ClampTests ActivationTests SoftmaxTests LayerNormTests RmsNormTests GroupNormTests
          PermuteSliceTests ConcatTests UpsampleTests PadTests EmbeddingTests TimestepEmbeddingTests
          AdaptiveAvgPoolTests MatMulTests AttentionTests)
FILTER="FullyQualifiedName~MeLFusion.Native.Tests.Cuda."
for family in "${FAMILIES[@]}"; do FILTER+="|FullyQualifiedName~MeLFusion.Native.Tests.Ops.$family."; done

run_tests() { # [NAME=VALUE...] [command prefix...]: the kernel tests on the cuda backend
  env MELFUSION_TEST_BACKENDS=cuda "$@" dotnet test tests/MeLFusion.Native.Tests -c Release --no-build -nologo \
    --filter "$FILTER" --logger "console;verbosity=minimal"
}

log "kernel tests on the cuda backend (cuBLAS for MatMul/Linear)"
run_tests
log "kernel tests on the cuda backend (kernels/gemm.cu for MatMul/Linear)"
run_tests MELFUSION_CUBLAS=0

# dotnet test runs the tests in a child process (testhost): --target-processes all follows it.
SANITIZER=(compute-sanitizer --target-processes all --error-exitcode 86 --print-limit 20)
log "compute-sanitizer memcheck"
run_tests "${SANITIZER[@]}" --tool memcheck --leak-check full
run_tests MELFUSION_CUBLAS=0 "${SANITIZER[@]}" --tool memcheck
log "compute-sanitizer racecheck (the project's kernels: cuBLAS off)"
run_tests MELFUSION_CUBLAS=0 "${SANITIZER[@]}" --tool racecheck --racecheck-report all

log "kernel timing ($REPLAYS graph replays per case)"
dotnet tools/KernelTiming/bin/Release/net10.0/KernelTiming.dll "$REPLAYS"
log "all GPU checks passed"
