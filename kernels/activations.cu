// Elementwise f32 activations (GELU exact and tanh forms, SiLU, leaky ReLU, tanh, and the loss functions' exp, log,
// abs, sqrt, square, sigmoid), the GEGLU gate, and their gradients, on contiguous tensors, one thread per element in a
// grid-stride loop. Activations may run in place (y == x), gradients too (dx == dy).
//
// Accuracy (PyTorch references in float64, tests at 1e-6 relative): every function is written in a tail-exact form.
// GELU uses Φ(x) = erfc(-x/√2)/2 with the product x/√2 carried to twice float precision, because erfc magnifies an
// argument error δ into a relative error of about 2z·δ (z = |x|/√2) far in the tail. The tanh form is x·sigmoid(2u),
// which has no 1 + tanh(u) cancellation; SiLU is x / (1 + e^-x). Derivatives avoid cancellation the same way: tanh'
// and sigmoid' come from e^-|x|, 1 - σ(z) is σ(-z) from its own exponential, and GELU's density carries -x²/2 to twice
// precision.
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
    Exp = 5,
    Log = 6,
    Abs = 7,
    Sqrt = 8,
    Square = 9,
    Sigmoid = 10,
};

/// 1/√2 split as Hi + Lo with Hi the nearest float, Lo the rest.
constexpr float InvSqrt2Hi = 0.70710677f;
constexpr float InvSqrt2Lo = 1.21016175e-08f;
constexpr float TwoOverSqrtPi = 1.12837917f;
constexpr float InvSqrt2Pi = 0.398942280f;
/// 2√(2/π) and its product with GELU's cubic coefficient: the tanh form's 2u = x (TanhScale + TanhCubic x²).
constexpr float TanhScale = 1.5957691216f;
constexpr float TanhCubic = 1.5957691216f * 0.044715f;

/// x Φ(x). z = -x/√2 = zh + zl exactly to ~2^-48 (an exact FMA product error plus the constant's low part); then
/// erfc(zh + zl) = erfc(zh) - zl · 2/√π · e^(-zh²) to first order. Beyond |x| = 16 the correction is far below an ulp
/// and is skipped, which also keeps infinities out of the error term.
static __device__ __forceinline__ float normal_cdf(float x)
{
    const float zh = -x * InvSqrt2Hi;
    const float zl = fabsf(x) < 16.0f ? fmaf(-x, InvSqrt2Hi, -zh) - x * InvSqrt2Lo : 0.0f;
    const float tail = erfcf(zh) - zl * TwoOverSqrtPi * expf(-zh * zh);
    return 0.5f * tail;
}

static __device__ __forceinline__ float gelu_erf(float x) { return x * normal_cdf(x); }

/// φ(x) = e^(-x²/2)/√(2π) with x²/2 = h + e exactly (an FMA's product error), so e^(-h)(1 - e) keeps full relative
/// precision far in the tails. |x| is clamped at 14, past which φ underflows anyway, to keep infinities out of e.
static __device__ __forceinline__ float normal_pdf(float x)
{
    const float a = fminf(fabsf(x), 14.0f), half = 0.5f * a;
    const float h = half * a, e = fmaf(half, a, -h);
    const float density = expf(-h) * InvSqrt2Pi;
    return density - density * e;
}

/// d/dx x Φ(x) = Φ(x) + x φ(x).
static __device__ __forceinline__ float gelu_erf_gradient(float x) { return fmaf(x, normal_pdf(x), normal_cdf(x)); }

/// 1 / (1 + e^-x): exact limits 0 and 1.
static __device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/// 0.5 x (1 + tanh u), u = √(2/π)(x + 0.044715 x³), evaluated as x · sigmoid(2u) = x / (1 + e^(-2u)).
static __device__ __forceinline__ float gelu_tanh(float x)
{
    const float twice_u = x * fmaf(x * x, TanhCubic, TanhScale);
    return x / (1.0f + expf(-twice_u));
}

/// d/dx x σ(2u) = σ(2u) + x σ(2u) σ(-2u) · d(2u)/dx.
static __device__ __forceinline__ float gelu_tanh_gradient(float x)
{
    const float square = x * x;
    const float twice_u = x * fmaf(square, TanhCubic, TanhScale), slope = fmaf(square, 3.0f * TanhCubic, TanhScale);
    const float s = sigmoid(twice_u);
    return fmaf(x * s, sigmoid(-twice_u) * slope, s);
}

/// e / (1 + e)² for e = e^-|x|, scaled: σ'(x) = σ(x)σ(-x) with e = e^-|x|, tanh'(x) = 4σ'(2x).
static __device__ __forceinline__ float logistic_density(float x)
{
    const float e = expf(-fabsf(x)), one_plus = 1.0f + e;
    return e / (one_plus * one_plus);
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
    else if constexpr (Kind == Tanh)
        return tanhf(x);
    else if constexpr (Kind == Exp)
        return expf(x);
    else if constexpr (Kind == Log)
        return logf(x);
    else if constexpr (Kind == Abs)
        return fabsf(x);
    else if constexpr (Kind == Sqrt)
        return sqrtf(x);
    else if constexpr (Kind == Square)
        return x * x;
    else
        return sigmoid(x);
}

/// dy · f'(x).
template <int Kind>
static __device__ __forceinline__ float activation_gradient(float x, float dy, float slope)
{
    if constexpr (Kind == GeluErf)
        return dy * gelu_erf_gradient(x);
    else if constexpr (Kind == GeluTanh)
        return dy * gelu_tanh_gradient(x);
    else if constexpr (Kind == Silu)
        return dy * sigmoid(x) * fmaf(x, sigmoid(-x), 1.0f); // σ(x) (1 + x σ(-x))
    else if constexpr (Kind == LeakyRelu)
        return x > 0.0f ? dy : dy * slope;
    else if constexpr (Kind == Tanh)
        return dy * (4.0f * logistic_density(2.0f * x));
    else if constexpr (Kind == Exp)
        return dy * expf(x);
    else if constexpr (Kind == Log)
        return dy / x;
    else if constexpr (Kind == Abs)
        return x > 0.0f ? dy : x < 0.0f ? -dy : 0.0f; // sign(x), 0 at ±0 and NaN as torch
    else if constexpr (Kind == Sqrt)
        return dy / (2.0f * sqrtf(x));
    else if constexpr (Kind == Square)
        return dy * (x + x);
    else
        return dy * logistic_density(x);
}

template <int Kind>
static __device__ __forceinline__ void activation(const float* x, float* y, long long count, float slope)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        y[i] = activate<Kind>(x[i], slope);
}

template <int Kind>
static __device__ __forceinline__ void activation_backward(const float* __restrict__ x, const float* dy, float* dx,
                                                           long long count, float slope)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
        dx[i] = activation_gradient<Kind>(x[i], dy[i], slope);
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
    case Exp: activation<Exp>(x, y, count, slope); break;
    case Log: activation<Log>(x, y, count, slope); break;
    case Abs: activation<Abs>(x, y, count, slope); break;
    case Sqrt: activation<Sqrt>(x, y, count, slope); break;
    case Square: activation<Square>(x, y, count, slope); break;
    case Sigmoid: activation<Sigmoid>(x, y, count, slope); break;
    default: __trap();
    }
}
MF_EXPORT_KERNEL(activation_f32)

/// dx = dy · activation'(x) over `count` elements, activation codes as activation_f32.
extern "C" __global__ void activation_backward_f32(const float* __restrict__ x, const float* dy, float* dx,
                                                   long long count, int kind, float slope)
{
    switch (kind)
    {
    case GeluErf: activation_backward<GeluErf>(x, dy, dx, count, slope); break;
    case GeluTanh: activation_backward<GeluTanh>(x, dy, dx, count, slope); break;
    case Silu: activation_backward<Silu>(x, dy, dx, count, slope); break;
    case LeakyRelu: activation_backward<LeakyRelu>(x, dy, dx, count, slope); break;
    case Tanh: activation_backward<Tanh>(x, dy, dx, count, slope); break;
    case Exp: activation_backward<Exp>(x, dy, dx, count, slope); break;
    case Log: activation_backward<Log>(x, dy, dx, count, slope); break;
    case Abs: activation_backward<Abs>(x, dy, dx, count, slope); break;
    case Sqrt: activation_backward<Sqrt>(x, dy, dx, count, slope); break;
    case Square: activation_backward<Square>(x, dy, dx, count, slope); break;
    case Sigmoid: activation_backward<Sigmoid>(x, dy, dx, count, slope); break;
    default: __trap();
    }
}
MF_EXPORT_KERNEL(activation_backward_f32)

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

/// GEGLU's gradient: x [rows, 2·hidden] and dy [rows, hidden] -> dx [rows, 2·hidden] with d hidden = dy · gelu(gate) and
/// d gate = dy · hidden · gelu'(gate); one thread per (row, column) writes both halves.
extern "C" __global__ void geglu_backward_f32(const float* __restrict__ x, const float* __restrict__ dy,
                                             float* __restrict__ dx, long long rows, int hidden)
{
    const unsigned long long count = static_cast<unsigned long long>(rows) * hidden;
    for (unsigned long long i = mf::grid_first(); i < count; i += mf::grid_stride())
    {
        const unsigned long long row = i / static_cast<unsigned>(hidden), column = i - row * hidden;
        const unsigned long long at = row * 2 * hidden + column;
        const float value = x[at], gate = x[at + hidden];
        dx[at] = dy[i] * gelu_erf(gate);
        dx[at + hidden] = dy[i] * value * gelu_erf_gradient(gate);
    }
}
MF_EXPORT_KERNEL(geglu_backward_f32)
