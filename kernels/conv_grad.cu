// Gradients of the convolutions (conv2d.cu, conv1d.cu, conv_transpose1d.cu), NCHW / NCL f32, as implicit GEMMs
// (implicit_gemm.cuh), deterministic: every output is one thread's FMA chain in a fixed order, no atomics.
//
// Input gradients, conv_transpose of dy: dx[b, ci, i] = sum over (co, tap) of weight[co, ci, tap] · dy[b, co, o] where
// o·stride = i + padding - tap·dilation, a GEMM of M = Cin, N = batch·input positions, K = Cout·taps. Taps whose o is
// not a whole output position load 0 (at stride s that is all but 1/s of them per axis: the strided convs are few).
//
// Weight gradients: dweight[co, ci, tap] = sum over (b, output position) of dy[b, co, o] · act(x[b, ci, o·stride -
// padding + tap·dilation]), a GEMM of M = Cout, N = Cin·taps whose reduction K = batch·output positions is long while
// M·N can be a handful of tiles. The host then cuts K into equal slices, one per grid layer (blockIdx.z), each writing
// its partial gradient to its own layer of a workspace, and conv_slice_sum_f32 adds the layers in slice order. The
// slicing depends only on the shapes (CudaKernels/Conv.cs ConvWeightGradientSlices), so every device sums alike.
//
// Launch: input gradients grid (ceil(batch·positions / 64), ceil(Cin / 64)), weight gradients grid
// (ceil(Cin·taps / 64), ceil(Cout / 64), slices), block 256, no dynamic shared memory; conv_slice_sum_f32 any grid,
// block a multiple of 32.
#include "implicit_gemm.cuh"

extern "C" __global__ void __launch_bounds__(256)
    conv2d_input_grad_f32(const float* __restrict__ dy, const float* __restrict__ weight, float* __restrict__ dx,
                          int batch, int in_channels, int out_channels, int height, int width, int kernel_h,
                          int kernel_w, int stride, int padding, int out_h, int out_w)
{
    const int taps = kernel_h * kernel_w, plane = height * width;
    mf::implicit_gemm_tile(
        in_channels, batch * plane, out_channels * taps, static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM,
        static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN,
        [&](int ci, int kk) {
            const int co = kk / taps, tap = kk - co * taps;
            return weight[(static_cast<long long>(co) * in_channels + ci) * taps + tap];
        },
        [&](int kk, int j) {
            const int co = kk / taps, tap = kk - co * taps, ky = tap / kernel_w, kx = tap - ky * kernel_w;
            const int b = j / plane, pos = j - b * plane, iy = pos / width, ix = pos - iy * width;
            const int ty = iy + padding - ky, tx = ix + padding - kx;
            if (ty < 0 || tx < 0 || ty % stride != 0 || tx % stride != 0) return 0.0f;
            const int oy = ty / stride, ox = tx / stride;
            if (oy >= out_h || ox >= out_w) return 0.0f;
            return dy[((static_cast<long long>(b) * out_channels + co) * out_h + oy) * out_w + ox];
        },
        [&](int ci, int j, float value) {
            const int b = j / plane, pos = j - b * plane;
            dx[(static_cast<long long>(b) * in_channels + ci) * plane + pos] = value;
        },
        /*a_along_k=*/taps > 1); // a 1x1 weight is contiguous along ci
}
MF_EXPORT_KERNEL(conv2d_input_grad_f32)

extern "C" __global__ void __launch_bounds__(256)
    conv2d_weight_grad_f32(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dw,
                           int batch, int in_channels, int out_channels, int height, int width, int kernel_h,
                           int kernel_w, int stride, int padding, int out_h, int out_w, int slice_length)
{
    const int taps = kernel_h * kernel_w, depth = in_channels * taps, out_plane = out_h * out_w;
    const int first = static_cast<int>(blockIdx.z) * slice_length, rest = batch * out_plane - first;
    float* slice = dw + static_cast<long long>(blockIdx.z) * out_channels * depth;
    mf::implicit_gemm_tile(
        out_channels, depth, rest < slice_length ? rest : slice_length,
        static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM, static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN,
        [&](int co, int r) {
            const int j = first + r, b = j / out_plane, pos = j - b * out_plane;
            return dy[(static_cast<long long>(b) * out_channels + co) * out_plane + pos];
        },
        [&](int r, int kk) {
            const int ci = kk / taps, tap = kk - ci * taps, ky = tap / kernel_w, kx = tap - ky * kernel_w;
            const int j = first + r, b = j / out_plane, pos = j - b * out_plane, oy = pos / out_w, ox = pos - oy * out_w;
            const int iy = oy * stride - padding + ky, ix = ox * stride - padding + kx;
            if (iy < 0 || iy >= height || ix < 0 || ix >= width) return 0.0f;
            return x[((static_cast<long long>(b) * in_channels + ci) * height + iy) * width + ix];
        },
        [&](int co, int kk, float value) { slice[static_cast<long long>(co) * depth + kk] = value; },
        /*a_along_k=*/true, /*b_along_j=*/false); // both operands run along the output positions
}
MF_EXPORT_KERNEL(conv2d_weight_grad_f32)

extern "C" __global__ void __launch_bounds__(256)
    conv1d_input_grad_f32(const float* __restrict__ dy, const float* __restrict__ weight, float* __restrict__ dx,
                          int batch, int in_channels, int out_channels, int length, int kernel, int stride, int padding,
                          int dilation, int out_length)
{
    mf::implicit_gemm_tile(
        in_channels, batch * length, out_channels * kernel, static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM,
        static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN,
        [&](int ci, int kk) {
            const int co = kk / kernel, tap = kk - co * kernel;
            return weight[(static_cast<long long>(co) * in_channels + ci) * kernel + tap];
        },
        [&](int kk, int j) {
            const int co = kk / kernel, tap = kk - co * kernel, b = j / length, i = j - b * length;
            const int t = i + padding - tap * dilation;
            if (t < 0 || t % stride != 0 || t / stride >= out_length) return 0.0f;
            return dy[(static_cast<long long>(b) * out_channels + co) * out_length + t / stride];
        },
        [&](int ci, int j, float value) {
            const int b = j / length, i = j - b * length;
            dx[(static_cast<long long>(b) * in_channels + ci) * length + i] = value;
        },
        /*a_along_k=*/kernel > 1); // a 1-tap weight is contiguous along ci
}
MF_EXPORT_KERNEL(conv1d_input_grad_f32)

extern "C" __global__ void __launch_bounds__(256)
    conv1d_weight_grad_f32(const float* __restrict__ x, const float* __restrict__ dy, float* __restrict__ dw,
                           int batch, int in_channels, int out_channels, int length, int kernel, int stride,
                           int padding, int dilation, int out_length, int fuse_leaky, float slope, int slice_length)
{
    const int depth = in_channels * kernel;
    const int first = static_cast<int>(blockIdx.z) * slice_length, rest = batch * out_length - first;
    float* slice = dw + static_cast<long long>(blockIdx.z) * out_channels * depth;
    mf::implicit_gemm_tile(
        out_channels, depth, rest < slice_length ? rest : slice_length,
        static_cast<int>(blockIdx.y) * mf::implicit_gemm::TileM, static_cast<int>(blockIdx.x) * mf::implicit_gemm::TileN,
        [&](int co, int r) {
            const int j = first + r, b = j / out_length, t = j - b * out_length;
            return dy[(static_cast<long long>(b) * out_channels + co) * out_length + t];
        },
        [&](int r, int kk) {
            const int ci = kk / kernel, tap = kk - ci * kernel, j = first + r, b = j / out_length, t = j - b * out_length;
            const int at = t * stride - padding + tap * dilation;
            if (at < 0 || at >= length) return 0.0f;
            return mf::input_activation(x[(static_cast<long long>(b) * in_channels + ci) * length + at], fuse_leaky,
                                        slope);
        },
        [&](int co, int kk, float value) { slice[static_cast<long long>(co) * depth + kk] = value; },
        /*a_along_k=*/true, /*b_along_j=*/false); // both operands run along the output positions
}
MF_EXPORT_KERNEL(conv1d_weight_grad_f32)

/// out[i] = sum over s < slices of partials[s·count + i], in slice order.
extern "C" __global__ void conv_slice_sum_f32(const float* __restrict__ partials, float* __restrict__ out,
                                              long long count, int slices)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        float sum = partials[i];
        for (int s = 1; s < slices; ++s) sum += partials[static_cast<unsigned long long>(s) * count + i];
        out[i] = sum;
    }
}
MF_EXPORT_KERNEL(conv_slice_sum_f32)
