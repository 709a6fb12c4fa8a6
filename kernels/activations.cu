// Elementwise f32 activations (GELU exact and tanh forms, SiLU, leaky ReLU, tanh) and the GEGLU gate, on contiguous
// tensors, one thread per element in a grid-stride loop. They may run in place (y == x).
//
// Accuracy (PyTorch references in float64, tests at 1e-6 relative): every function is written in a tail-exact form.
// GELU uses Φ(x) = erfc(-x/√2)/2 with the product x/√2 carried to twice float precision, because erfc magnifies an
// argument error δ into a relative error of about 2z·δ (z = |x|/√2) far in the tail. The tanh form is x·sigmoid(2u),
// which has no 1 + tanh(u) cancellation; SiLU is x / (1 + e^-x).
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

namespace
{
// Activation codes, as CudaKernels/Activations.cs passes them.
enum : int
{
    GeluErf = 0,
    GeluTanh = 1,
    Silu = 2,
    LeakyRelu = 3,
    Tanh = 4,
};

/// 1/√2 split as Hi + Lo with Hi the nearest float, Lo the rest.
constexpr float InvSqrt2Hi = 0.70710677f;
constexpr float InvSqrt2Lo = 1.21016175e-08f;
constexpr float TwoOverSqrtPi = 1.12837917f;

/// x Φ(x). z = -x/√2 = zh + zl exactly to ~2^-48 (an exact FMA product error plus the constant's low part); then
/// erfc(zh + zl) = erfc(zh) - zl · 2/√π · e^(-zh²) to first order. Beyond |x| = 16 the correction is far below an ulp
/// and is skipped, which also keeps infinities out of the error term.
static __device__ __forceinline__ float gelu_erf(float x)
{
    const float zh = -x * InvSqrt2Hi;
    const float zl = fabsf(x) < 16.0f ? fmaf(-x, InvSqrt2Hi, -zh) - x * InvSqrt2Lo : 0.0f;
    const float tail = erfcf(zh) - zl * TwoOverSqrtPi * expf(-zh * zh);
    return x * (0.5f * tail);
}

/// 0.5 x (1 + tanh u), u = √(2/π)(x + 0.044715 x³), evaluated as x · sigmoid(2u) = x / (1 + e^(-2u)).
static __device__ __forceinline__ float gelu_tanh(float x)
{
    const float twice_u = x * fmaf(x * x, 1.5957691216f * 0.044715f, 1.5957691216f);
    return x / (1.0f + expf(-twice_u));
}

template <int Kind>
static __device__ __forceinline__ float activate(float x, float slope)
{
    if constexpr (Kind == GeluErf)
        return gelu_erf(x);
    else if constexpr (Kind == GeluTanh)
        return gelu_tanh(x);
    else if constexpr (Kind == Silu)
        return x / (1.0f + expf(-x)); // e^-x overflowing gives x / inf = -0, the limit
    else if constexpr (Kind == LeakyRelu)
        return x > 0.0f ? x : x * slope;
    else
        return tanhf(x);
}

template <int Kind>
static __device__ __forceinline__ void activation(const float* x, float* y, long long count, float slope)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        y[i] = activate<Kind>(x[i], slope);
}
} // namespace

/// y = activation(x) over `count` elements; `slope` is leaky ReLU's negative slope (unused otherwise).
extern "C" __global__ void activation_f32(const float* x, float* y, long long count, int kind, float slope)
{
    switch (kind)
    {
    case GeluErf: activation<GeluErf>(x, y, count, slope); break;
    case GeluTanh: activation<GeluTanh>(x, y, count, slope); break;
    case Silu: activation<Silu>(x, y, count, slope); break;
    case LeakyRelu: activation<LeakyRelu>(x, y, count, slope); break;
    case Tanh: activation<Tanh>(x, y, count, slope); break;
    default: __trap();
    }
}
MF_EXPORT_KERNEL(activation_f32)

/// GEGLU: x [rows, 2·hidden] -> y [rows, hidden], y = x[:, :hidden] * gelu(x[:, hidden:]) (exact GELU).
extern "C" __global__ void geglu_f32(const float* __restrict__ x, float* __restrict__ y, long long rows, int hidden)
{
    const unsigned long long count = static_cast<unsigned long long>(rows) * hidden;
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const unsigned long long row = i / static_cast<unsigned>(hidden), column = i - row * hidden;
        const float* in = x + row * 2 * hidden + column;
        y[i] = in[0] * gelu_erf(in[hidden]);
    }
}
MF_EXPORT_KERNEL(geglu_f32)
