// The audio front end: |STFT| of f32 waveforms with torch.stft semantics, and log(max(x, min)).
//
// stft_magnitude_f32: one block per (frame, batch item). torch.stft(center=True, pad_mode="reflect") frames the wave
// padded by nFft/2 mirrored samples on each side (the edge sample not repeated); frame f starts at f·hop in the padded
// wave. The periodic Hann window of winLength samples sits centred in the nFft frame, zeros around it. The real
// transform of N = nFft points is done as a complex FFT of M = N/2 points on z[m] = x[2m] + i·x[2m+1] (the frame's
// floats, read as interleaved complex numbers), then split: X[k] = (Z[k] + conj Z[M-k]) / 2 - i·W^k (Z[k] - conj Z[M-k])
// / 2, W = e^(-2πi/N), for k = 0..M. The FFT is iterative radix-2 decimation in time in shared memory: the frame is
// stored bit-reversed as it is loaded, then log2(M) stages of butterflies, a barrier between stages. The twiddles W^k,
// k = 0..M, are computed once per block into shared memory from exact arguments (sincospif of 2k/N on the GPU, double
// precision sin/cos on the CPU emulation): both are correctly rounded or within an ulp, and the order of every
// operation is fixed, so results are deterministic. Output [B, M+1, frames], |X[k]| at (b, k, f).
//
// Launch: grid (frames, B), block a multiple of 32 (up to 256), dynamic shared memory (2N + 2) floats.
//
// log_clamp_f32: one thread per element in a grid-stride loop, y may be x. A NaN stays NaN (torch.clamp keeps it).
//
// Launch: any grid, block a multiple of 32; no shared memory.
#include "common.cuh"

/// cos and sin of π·x, for x = 2k/N exact (N a power of two).
static __device__ __forceinline__ void sincos_pi(float x, float* sine, float* cosine)
{
#if defined(__CUDA_ARCH__)
    sincospif(x, sine, cosine);
#else
    // glibc has no sincospi; the double-precision product is within half an ulp of float after rounding.
    constexpr double Pi = 3.141592653589793238462643383279502884;
    *sine = static_cast<float>(sin(Pi * x));
    *cosine = static_cast<float>(cos(Pi * x));
#endif
}

/// Index m reversed over `bits` bits (the DIT input order); bits = 0 when M = 1.
static __device__ __forceinline__ int bit_reversed(int m, int bits)
{
    return bits == 0 ? 0 : static_cast<int>(__brev(static_cast<unsigned>(m)) >> (32 - bits));
}

/// Position of padded-wave sample `p` (may be negative or past the end) in the wave of `samples` samples: reflection
/// without repeating the edge. The host guarantees samples > nFft/2, so one reflection always lands inside.
static __device__ __forceinline__ int reflect(int p, int samples)
{
    if (p < 0) return -p;
    if (p >= samples) return 2 * (samples - 1) - p;
    return p;
}

extern "C" __global__ void stft_magnitude_f32(const float* wave, float* magnitude, int samples, int frames, int n_fft,
                                              int hop, int win_length)
{
    extern __shared__ float stft_shared[];
    float* z = stft_shared;                 // M complex values, interleaved (re, im)
    float* twiddles = stft_shared + n_fft;  // W^k for k = 0..M, interleaved (cos, -sin)
    const int half = n_fft / 2, frame = blockIdx.x, batch = blockIdx.y;
    const int stride = static_cast<int>(blockDim.x);
    const int bits = 31 - __clz(half);

    for (int k = threadIdx.x; k <= half; k += stride)
    {
        float sine, cosine;
        sincos_pi(static_cast<float>(2 * k) / static_cast<float>(n_fft), &sine, &cosine);
        twiddles[2 * k] = cosine;
        twiddles[2 * k + 1] = -sine;
    }

    // Windowed frame, each sample n stored as part (n & 1) of complex value n / 2, at that value's bit-reversed place.
    const float* in = wave + static_cast<size_t>(batch) * samples;
    const int window_start = (n_fft - win_length) / 2;
    const int first = frame * hop - half;
    for (int n = threadIdx.x; n < n_fft; n += stride)
    {
        const int w = n - window_start;
        float value = 0.0f;
        if (w >= 0 && w < win_length)
        {
            // torch.hann_window(periodic=True): 0.5 - 0.5·cos(2πw / winLength).
            float sine, cosine;
            sincos_pi(static_cast<float>(2 * w) / static_cast<float>(win_length), &sine, &cosine);
            value = (0.5f - 0.5f * cosine) * in[reflect(first + n, samples)];
        }
        z[2 * bit_reversed(n >> 1, bits) + (n & 1)] = value;
    }
    __syncthreads();

    // Stage of span L: butterfly (group g, j < L/2) combines g·L + j and g·L + j + L/2 with W_L^j = W^(j·N/L).
    for (int span = 2; span <= half; span *= 2)
    {
        const int half_span = span / 2, twiddle_step = n_fft / span;
        for (int b = threadIdx.x; b < half / 2; b += stride)
        {
            const int j = b % half_span;
            const int top = (b / half_span) * span + j, bottom = top + half_span;
            const float wr = twiddles[2 * j * twiddle_step], wi = twiddles[2 * j * twiddle_step + 1];
            const float br = z[2 * bottom], bi = z[2 * bottom + 1];
            const float tr = wr * br - wi * bi, ti = wr * bi + wi * br;
            const float ar = z[2 * top], ai = z[2 * top + 1];
            z[2 * top] = ar + tr;
            z[2 * top + 1] = ai + ti;
            z[2 * bottom] = ar - tr;
            z[2 * bottom + 1] = ai - ti;
        }
        __syncthreads();
    }

    // Split into the real signal's bins: E = (Z[k] + conj Z[M-k]) / 2, O = -i (Z[k] - conj Z[M-k]) / 2, X = E + W^k O.
    const int bins = half + 1;
    float* out = magnitude + static_cast<size_t>(batch) * bins * frames + frame;
    for (int k = threadIdx.x; k <= half; k += stride)
    {
        const int a = k == half ? 0 : k, c = k == 0 ? 0 : half - k;
        const float zr = z[2 * a], zi = z[2 * a + 1], cr = z[2 * c], ci = -z[2 * c + 1];
        const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
        const float dr = zr - cr, di = zi - ci;
        const float or_ = 0.5f * di, oi = -0.5f * dr;
        const float wr = twiddles[2 * k], wi = twiddles[2 * k + 1];
        const float xr = er + (wr * or_ - wi * oi), xi = ei + (wr * oi + wi * or_);
        out[static_cast<size_t>(k) * frames] = sqrtf(xr * xr + xi * xi);
    }
}
MF_EXPORT_KERNEL(stft_magnitude_f32)

extern "C" __global__ void log_clamp_f32(const float* x, float* y, long long count, float min)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const float value = x[i];
        y[i] = logf(value != value ? value : fmaxf(value, min));
    }
}
MF_EXPORT_KERNEL(log_clamp_f32)
