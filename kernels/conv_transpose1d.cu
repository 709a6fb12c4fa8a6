// Transposed 1-D convolution, NCL f32, PyTorch semantics (weight [Cin, Cout, K], stride, padding, output padding), as
// polyphase implicit GEMMs (implicit_gemm.cuh), one per output phase: y[b, co, t] sums w[ci, co, k] · act(x[b, ci, l])
// over t + padding = l·stride + k. Outputs of phase r = (t + padding) mod stride read only the taps k = r + j·stride,
// from x position l = (t + padding) div stride - j: a dense GEMM over (ci, j) with no zero insertion. act is the optional
// fused leaky-ReLU, applied as the input is gathered; bias is added in the epilogue.
//
// Launch: grid (ceil(batch·ceil(Lout / stride) / 64), ceil(Cout / 64), stride), block 256 (blockIdx.z is the phase);
// no dynamic shared memory.
#include "implicit_gemm.cuh"

extern "C" __global__ void __launch_bounds__(256)
    conv_transpose1d_f32(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
                         float* __restrict__ y, int batch, int in_channels, int out_channels, int length, int kernel,
                         int stride, int padding, int out_length, int fuse_leaky, float slope)
{
    const int phase = static_cast<int>(blockIdx.z);
    const int phase_taps = phase < kernel ? (kernel - phase + stride - 1) / stride : 0;
    // First output of the phase: the smallest t >= 0 with (t + padding) mod stride == phase.
    const int first = ((phase - padding) % stride + stride) % stride;
    const int phase_length = first < out_length ? (out_length - 1 - first) / stride + 1 : 0;
    const int positions = batch * phase_length, col0 = static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN;
    if (col0 >= positions) return; // the grid covers the longest phase; uniform over the block

    mf::implicit_gemm_tile(
        out_channels, positions, in_channels * phase_taps, static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM,
        col0,
        [&](int co, int kk) {
            const int ci = kk / phase_taps, j = kk - ci * phase_taps;
            return weight[(static_cast<long long>(ci) * out_channels + co) * kernel + phase + j * stride];
        },
        [&](int kk, int n) {
            const int ci = kk / phase_taps, j = kk - ci * phase_taps, b = n / phase_length, i = n - b * phase_length;
            const int at = (first + i * stride + padding) / stride - j;
            if (at < 0 || at >= length) return 0.0f;
            return mf::input_activation(x[(static_cast<long long>(b) * in_channels + ci) * length + at], fuse_leaky,
                                        slope);
        },
        [&](int co, int n, float value) {
            const int b = n / phase_length, i = n - b * phase_length;
            if (bias != nullptr) value += bias[co];
            y[(static_cast<long long>(b) * out_channels + co) * out_length + first + i * stride] = value;
        });
}
MF_EXPORT_KERNEL(conv_transpose1d_f32)
