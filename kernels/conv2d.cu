// 2-D convolution, NCHW f32, PyTorch semantics (weight [Cout, Cin, kh, kw], symmetric zero padding, one stride), as an
// implicit GEMM (implicit_gemm.cuh): C[co, (b, oy, ox)] = sum over (ci, ky, kx) of weight[co, ci, ky, kx] ·
// x[b, ci, oy·stride - padding + ky, ox·stride - padding + kx], then + bias[co] + residual in the epilogue.
// The residual may be the output's own memory: each element is read once, by the thread that then writes it.
//
// Launch: grid (ceil(batch·Ho·Wo / 64), ceil(Cout / 64)), block 256; no dynamic shared memory.
#include "implicit_gemm.cuh"

extern "C" __global__ void __launch_bounds__(256)
    conv2d_f32(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
               const float* residual, float* y, int batch, int in_channels, int out_channels, int height, int width,
               int kernel_h, int kernel_w, int stride, int padding, int out_h, int out_w)
{
    const int taps = kernel_h * kernel_w, reduction = in_channels * taps, out_plane = out_h * out_w;
    const int positions = batch * out_plane;
    mf::implicit_gemm_tile(
        out_channels, positions, reduction, static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM,
        static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN,
        [&](int co, int kk) { return weight[static_cast<long long>(co) * reduction + kk]; },
        [&](int kk, int j) {
            const int ci = kk / taps, tap = kk - ci * taps, ky = tap / kernel_w, kx = tap - ky * kernel_w;
            const int b = j / out_plane, pos = j - b * out_plane, oy = pos / out_w, ox = pos - oy * out_w;
            const int iy = oy * stride - padding + ky, ix = ox * stride - padding + kx;
            if (iy < 0 || iy >= height || ix < 0 || ix >= width) return 0.0f;
            return x[((static_cast<long long>(b) * in_channels + ci) * height + iy) * width + ix];
        },
        [&](int co, int j, float value) {
            const int b = j / out_plane, pos = j - b * out_plane;
            const long long at = (static_cast<long long>(b) * out_channels + co) * out_plane + pos;
            if (bias != nullptr) value += bias[co];
            if (residual != nullptr) value += residual[at];
            y[at] = value;
        });
}
MF_EXPORT_KERNEL(conv2d_f32)
