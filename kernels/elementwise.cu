// Elementwise f32 arithmetic over strided, broadcast operands into a contiguous output: a (op) b (add, sub, mul, div)
// and x (op) constant (mul, add, max, min). The host coalesces the iteration space first (CudaKernels/StridedIndex.cs):
// size-1 dims dropped, neighbouring dims merged where every operand steps through them uniformly, broadcast dims given
// stride 0; at most mf::MaxRank dims remain. One thread per output element in a grid-stride loop; each output is one
// IEEE operation, so results equal PyTorch's bit for bit. The output may be one of the inputs (in place): every thread
// reads its own element before writing it.
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

namespace
{
// Operation codes, as CudaKernels/Elementwise.cs passes them.
enum : int
{
    OpAdd = 0,
    OpSubtract = 1,
    OpMultiply = 2,
    OpDivide = 3,
    OpMaximum = 4,
    OpMinimum = 5,
};

template <int Op>
static __device__ __forceinline__ float apply(float x, float y)
{
    if constexpr (Op == OpAdd)
        return x + y;
    else if constexpr (Op == OpSubtract)
        return x - y;
    else if constexpr (Op == OpMultiply)
        return x * y;
    else if constexpr (Op == OpDivide)
        return x / y;
    // torch.clamp: a NaN on either side gives NaN (fmaxf/fminf would return the other operand); x + y is that NaN.
    else if constexpr (Op == OpMaximum)
        return x != x || y != y ? x + y : fmaxf(x, y);
    else
        return x != x || y != y ? x + y : fminf(x, y);
}

template <int Op, class Index>
static __device__ __forceinline__ void binary_loop(const float* a, const float* b, float* out, Index count, int rank,
                                                   const int* dims, const long long* a_strides,
                                                   const long long* b_strides)
{
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const Index flat = static_cast<Index>(i);
        const float x = a[mf::strided_offset(flat, rank, dims, a_strides)];
        const float y = b[mf::strided_offset(flat, rank, dims, b_strides)];
        out[i] = apply<Op>(x, y);
    }
}

template <int Op>
static __device__ __forceinline__ void binary(const float* a, const float* b, float* out, long long count, int rank,
                                              const int* dims, const long long* a_strides, const long long* b_strides)
{
    if (count <= 0xffffffffll)
        binary_loop<Op, unsigned>(a, b, out, static_cast<unsigned>(count), rank, dims, a_strides, b_strides);
    else
        binary_loop<Op, unsigned long long>(a, b, out, static_cast<unsigned long long>(count), rank, dims, a_strides,
                                            b_strides);
}
} // namespace

/// out[i] = a[i] (op) b[i] over the coalesced space d0..d5 (the first `rank` used), with each operand's strides.
extern "C" __global__ void binary_f32(const float* a, const float* b, float* out, long long count, int op, int rank,
                                      int d0, int d1, int d2, int d3, int d4, int d5, long long a0, long long a1,
                                      long long a2, long long a3, long long a4, long long a5, long long b0,
                                      long long b1, long long b2, long long b3, long long b4, long long b5)
{
    const int dims[mf::MaxRank] = {d0, d1, d2, d3, d4, d5};
    const long long as[mf::MaxRank] = {a0, a1, a2, a3, a4, a5};
    const long long bs[mf::MaxRank] = {b0, b1, b2, b3, b4, b5};
    switch (op)
    {
    case OpAdd: binary<OpAdd>(a, b, out, count, rank, dims, as, bs); break;
    case OpSubtract: binary<OpSubtract>(a, b, out, count, rank, dims, as, bs); break;
    case OpMultiply: binary<OpMultiply>(a, b, out, count, rank, dims, as, bs); break;
    case OpDivide: binary<OpDivide>(a, b, out, count, rank, dims, as, bs); break;
    default: __trap();
    }
}
MF_EXPORT_KERNEL(binary_f32)

namespace
{
template <int Op, class Index>
static __device__ __forceinline__ void scalar_loop(const float* x, float* y, Index count, float value, int rank,
                                                   const int* dims, const long long* strides)
{
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
        y[i] = apply<Op>(x[mf::strided_offset(static_cast<Index>(i), rank, dims, strides)], value);
}

template <int Op>
static __device__ __forceinline__ void scalar(const float* x, float* y, long long count, float value, int rank,
                                              const int* dims, const long long* strides)
{
    if (count <= 0xffffffffll)
        scalar_loop<Op, unsigned>(x, y, static_cast<unsigned>(count), value, rank, dims, strides);
    else
        scalar_loop<Op, unsigned long long>(x, y, static_cast<unsigned long long>(count), value, rank, dims, strides);
}
} // namespace

/// y[i] = x[i] (op) value over the coalesced space d0..d5 with x's strides s0..s5; op is add, mul, max or min.
extern "C" __global__ void scalar_f32(const float* x, float* y, long long count, int op, float value, int rank, int d0,
                                      int d1, int d2, int d3, int d4, int d5, long long s0, long long s1, long long s2,
                                      long long s3, long long s4, long long s5)
{
    const int dims[mf::MaxRank] = {d0, d1, d2, d3, d4, d5};
    const long long strides[mf::MaxRank] = {s0, s1, s2, s3, s4, s5};
    switch (op)
    {
    case OpAdd: scalar<OpAdd>(x, y, count, value, rank, dims, strides); break;
    case OpMultiply: scalar<OpMultiply>(x, y, count, value, rank, dims, strides); break;
    case OpMaximum: scalar<OpMaximum>(x, y, count, value, rank, dims, strides); break;
    case OpMinimum: scalar<OpMinimum>(x, y, count, value, rank, dims, strides); break;
    default: __trap();
    }
}
MF_EXPORT_KERNEL(scalar_f32)

/// dx = dy where min <= x <= max, else 0: the gradient of a clamp (bounds inclusive, as torch). x, dy, dx contiguous;
/// dx may be dy.
extern "C" __global__ void clamp_backward_f32(const float* x, const float* dy, float* dx, long long count, float min,
                                              float max)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        dx[i] = x[i] >= min && x[i] <= max ? dy[i] : 0.0f;
}
MF_EXPORT_KERNEL(clamp_backward_f32)
