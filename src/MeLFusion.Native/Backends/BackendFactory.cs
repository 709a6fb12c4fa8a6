using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Backends.Cuda;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends;

/// <summary>Creates a backend from its command-line name.</summary>
public static class BackendFactory
{
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda", "cuda-emulated"];

    public static IBackend Create(string name) => name switch
    {
        "cpu" => new CpuBackend(),
        "cuda" => new CudaBackend(),
        "cuda-emulated" => new CudaEmulatedBackend(),
        _ => throw new ArgumentException($"unknown device '{name}'; choose one of: {string.Join(", ", Names)}", nameof(name)),
    };
}
