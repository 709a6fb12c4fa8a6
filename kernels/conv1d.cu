// 1-D convolution, NCL f32, PyTorch semantics (weight [Cout, Cin, K], zero padding, stride, dilation), as an implicit
// GEMM (implicit_gemm.cuh): C[co, (b, t)] = sum over (ci, k) of weight[co, ci, k] · act(x[b, ci, t·stride - padding +
// k·dilation]), then + bias[co] + residual in the epilogue. act is the optional fused leaky-ReLU (HiFi-GAN applies one
// before every conv), applied as the input is gathered. The residual may be the output's own memory: each element is
// read once, by the thread that then writes it.
//
// Launch: grid (ceil(batch·Lout / 64), ceil(Cout / 64)), block 256; no dynamic shared memory.
#include "implicit_gemm.cuh"

extern "C" __global__ void __launch_bounds__(256)
    conv1d_f32(const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
               const float* residual, float* y, int batch, int in_channels, int out_channels, int length, int kernel,
               int stride, int padding, int dilation, int out_length, int fuse_leaky, float slope)
{
    const int reduction = in_channels * kernel;
    mf::implicit_gemm_tile(
        out_channels, batch * out_length, reduction, static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM,
        static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN,
        [&](int co, int kk) { return weight[static_cast<long long>(co) * reduction + kk]; },
        [&](int kk, int j) {
            const int ci = kk / kernel, tap = kk - ci * kernel, b = j / out_length, t = j - b * out_length;
            const int at = t * stride - padding + tap * dilation;
            if (at < 0 || at >= length) return 0.0f;
            return mf::input_activation(x[(static_cast<long long>(b) * in_channels + ci) * length + at], fuse_leaky,
                                        slope);
        },
        [&](int co, int j, float value) {
            const int b = j / out_length, t = j - b * out_length;
            const long long at = (static_cast<long long>(b) * out_channels + co) * out_length + t;
            if (bias != nullptr) value += bias[co];
            if (residual != nullptr) value += residual[at];
            y[at] = value;
        });
}
MF_EXPORT_KERNEL(conv1d_f32)
