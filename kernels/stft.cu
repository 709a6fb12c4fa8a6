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
// The gradient of |STFT| (CudaKernels/CudaKernelBackend.Audio.cs), in two launches:
// stft_magnitude_backward_frames_f32: one block per (frame, batch item) recomputes the frame's spectrum X as above and
// turns d|X| into C[k] = d|X[k]| · X[k] / |X[k]| (0 where |X[k]| = 0). A frame sample's gradient is
// Re Σ_{k≤M} C[k] e^(2πikn/N): the unnormalised inverse real DFT of the Hermitian spectrum H (H[k] = C[k]/2 for
// 0 < k < M, H[0] = C[0], H[M] = C[M]), computed as an inverse M-point FFT of Z'[k] = (H[k] + conj H[M-k]) +
// i·conj(W^k)·(H[k] - conj H[M-k]), whose result z[m] = v[2m] + i·v[2m+1] is the frame's sample gradients v, then
// times the window into frame_gradients [B, frames, N].
// Launch: grid (frames, B), block a multiple of 32 (up to 256), dynamic shared memory (3N + 4) floats.
// stft_magnitude_backward_overlap_f32: one thread per wave sample i sums, in a fixed order (the CPU backend's), the
// frames that read padded position i + N/2 directly (frames ascending), then its left reflection N/2 - i, then its
// right reflection N/2 + 2(T-1) - i, where those exist. Deterministic: no atomics, one writer per sample.
// Launch: any grid, block a multiple of 32; no shared memory.
//
// log_clamp_f32: one thread per element in a grid-stride loop, y may be x. A NaN stays NaN (torch.clamp keeps it).
// log_clamp_backward_f32: dx = dy / x where x >= min, else 0 (NaN included), as torch's gradient; dx may be dy.
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

/// torch.hann_window(win_length, periodic=True) at w: 0.5 - 0.5·cos(2πw / win_length).
static __device__ __forceinline__ float hann(int w, int win_length)
{
    float sine, cosine;
    sincos_pi(static_cast<float>(2 * w) / static_cast<float>(win_length), &sine, &cosine);
    return 0.5f - 0.5f * cosine;
}

/// W^k = e^(-2πik/N) for k = 0..N/2 into twiddles, interleaved (cos, -sin).
static __device__ __forceinline__ void stft_twiddles(float* twiddles, int n_fft)
{
    for (int k = static_cast<int>(threadIdx.x); k <= n_fft / 2; k += static_cast<int>(blockDim.x))
    {
        float sine, cosine;
        sincos_pi(static_cast<float>(2 * k) / static_cast<float>(n_fft), &sine, &cosine);
        twiddles[2 * k] = cosine;
        twiddles[2 * k + 1] = -sine;
    }
}

/// The windowed frame `frame` of the wave row `in`, each sample n stored as part (n & 1) of complex value n / 2, at
/// that value's bit-reversed place (the DIT input order).
static __device__ __forceinline__ void stft_load_frame(float* z, const float* in, int samples, int frame, int n_fft,
                                                       int hop, int win_length)
{
    const int half = n_fft / 2, bits = 31 - __clz(half);
    const int window_start = (n_fft - win_length) / 2;
    const int first = frame * hop - half;
    for (int n = static_cast<int>(threadIdx.x); n < n_fft; n += static_cast<int>(blockDim.x))
    {
        const int w = n - window_start;
        float value = 0.0f;
        if (w >= 0 && w < win_length) value = hann(w, win_length) * in[reflect(first + n, samples)];
        z[2 * bit_reversed(n >> 1, bits) + (n & 1)] = value;
    }
}

/// The M-point complex FFT of z in place, bit-reversed in, natural order out: W_L^j = W^(j·N/L) for the forward
/// transform, its conjugate for the unnormalised inverse. Starts and ends with a barrier.
static __device__ __forceinline__ void stft_fft(float* z, const float* twiddles, int n_fft, bool inverse)
{
    const int half = n_fft / 2;
    __syncthreads();
    // Stage of span L: butterfly (group g, j < L/2) combines g·L + j and g·L + j + L/2.
    for (int span = 2; span <= half; span *= 2)
    {
        const int half_span = span / 2, twiddle_step = n_fft / span;
        for (int b = static_cast<int>(threadIdx.x); b < half / 2; b += static_cast<int>(blockDim.x))
        {
            const int j = b % half_span;
            const int top = (b / half_span) * span + j, bottom = top + half_span;
            const float wr = twiddles[2 * j * twiddle_step];
            const float wi = inverse ? -twiddles[2 * j * twiddle_step + 1] : twiddles[2 * j * twiddle_step + 1];
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
}

/// Bin k (0..M) of the real frame's spectrum from the half-size spectrum Z (natural order): E = (Z[k] + conj Z[M-k])
/// / 2, O = -i (Z[k] - conj Z[M-k]) / 2, X = E + W^k O.
static __device__ __forceinline__ void stft_bin(const float* z, const float* twiddles, int k, int half, float* re,
                                                float* im)
{
    const int a = k == half ? 0 : k, c = k == 0 ? 0 : half - k;
    const float zr = z[2 * a], zi = z[2 * a + 1], cr = z[2 * c], ci = -z[2 * c + 1];
    const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci);
    const float dr = zr - cr, di = zi - ci;
    const float or_ = 0.5f * di, oi = -0.5f * dr;
    const float wr = twiddles[2 * k], wi = twiddles[2 * k + 1];
    *re = er + (wr * or_ - wi * oi);
    *im = ei + (wr * oi + wi * or_);
}

extern "C" __global__ void stft_magnitude_f32(const float* wave, float* magnitude, int samples, int frames, int n_fft,
                                              int hop, int win_length)
{
    extern __shared__ float stft_shared[];
    float* z = stft_shared;                 // M complex values, interleaved (re, im)
    float* twiddles = stft_shared + n_fft;  // W^k for k = 0..M, interleaved (cos, -sin)
    const int half = n_fft / 2, frame = blockIdx.x, batch = blockIdx.y;

    stft_twiddles(twiddles, n_fft);
    stft_load_frame(z, wave + static_cast<size_t>(batch) * samples, samples, frame, n_fft, hop, win_length);
    stft_fft(z, twiddles, n_fft, false);

    const int bins = half + 1;
    float* out = magnitude + static_cast<size_t>(batch) * bins * frames + frame;
    for (int k = static_cast<int>(threadIdx.x); k <= half; k += static_cast<int>(blockDim.x))
    {
        float xr, xi;
        stft_bin(z, twiddles, k, half, &xr, &xi);
        out[static_cast<size_t>(k) * frames] = sqrtf(xr * xr + xi * xi);
    }
}
MF_EXPORT_KERNEL(stft_magnitude_f32)

extern "C" __global__ void stft_magnitude_backward_frames_f32(const float* wave, const float* magnitude_gradient,
                                                              float* frame_gradients, int samples, int frames,
                                                              int n_fft, int hop, int win_length)
{
    extern __shared__ float stft_shared[];
    float* z = stft_shared;                     // M complex values, interleaved (re, im)
    float* twiddles = stft_shared + n_fft;      // W^k for k = 0..M, interleaved (cos, -sin)
    float* spectrum = twiddles + n_fft + 2;     // H[k] for k = 0..M, interleaved (re, im)
    const int half = n_fft / 2, frame = blockIdx.x, batch = blockIdx.y, bits = 31 - __clz(half);
    const int stride = static_cast<int>(blockDim.x);

    stft_twiddles(twiddles, n_fft);
    stft_load_frame(z, wave + static_cast<size_t>(batch) * samples, samples, frame, n_fft, hop, win_length);
    stft_fft(z, twiddles, n_fft, false);

    const float* gradient = magnitude_gradient + static_cast<size_t>(batch) * (half + 1) * frames + frame;
    for (int k = static_cast<int>(threadIdx.x); k <= half; k += stride)
    {
        float xr, xi;
        stft_bin(z, twiddles, k, half, &xr, &xi);
        const float magnitude = sqrtf(xr * xr + xi * xi);
        const float scale = magnitude > 0.0f ? (k == 0 || k == half ? 1.0f : 0.5f) * gradient[static_cast<size_t>(k) * frames] / magnitude : 0.0f;
        spectrum[2 * k] = scale * xr;
        spectrum[2 * k + 1] = scale * xi;
    }
    __syncthreads();

    // Z'[k] at k's bit-reversed place, the input order of the inverse FFT. With S = A + conj B, D = A - conj B
    // (A = H[k], B = H[M-k]) and W^k = wr + i·wi: i·conj(W^k)·D = (wi·Dr - wr·Di) + i·(wi·Di + wr·Dr).
    for (int k = static_cast<int>(threadIdx.x); k < half; k += stride)
    {
        const float ar = spectrum[2 * k], ai = spectrum[2 * k + 1];
        const float br = spectrum[2 * (half - k)], bi = spectrum[2 * (half - k) + 1];
        const float sr = ar + br, si = ai - bi, dr = ar - br, di = ai + bi;
        const float wr = twiddles[2 * k], wi = twiddles[2 * k + 1];
        const int slot = bit_reversed(k, bits);
        z[2 * slot] = sr + (wi * dr - wr * di);
        z[2 * slot + 1] = si + (wi * di + wr * dr);
    }
    stft_fft(z, twiddles, n_fft, true);

    // z now holds the frame's sample gradients v[n] in order (v[2m] = Re z[m], v[2m+1] = Im z[m]).
    float* out = frame_gradients + (static_cast<size_t>(batch) * frames + frame) * n_fft;
    const int window_start = (n_fft - win_length) / 2;
    for (int n = static_cast<int>(threadIdx.x); n < n_fft; n += stride)
    {
        const int w = n - window_start;
        out[n] = w >= 0 && w < win_length ? hann(w, win_length) * z[n] : 0.0f;
    }
}
MF_EXPORT_KERNEL(stft_magnitude_backward_frames_f32)

/// `sum` plus the gradients of padded-wave position j from the frames that read it, frames ascending.
static __device__ __forceinline__ float padded_position_gradient(const float* frame_gradients, int j, int frames,
                                                                 int n_fft, int hop, float sum)
{
    const int first = max(0, (j - n_fft + hop) / hop), last = min(frames - 1, j / hop);
    for (int f = first; f <= last; ++f) sum += frame_gradients[static_cast<size_t>(f) * n_fft + j - f * hop];
    return sum;
}

/// wave_gradient [B, T] (count = B·T) from frame_gradients [B, frames, N].
extern "C" __global__ void stft_magnitude_backward_overlap_f32(const float* __restrict__ frame_gradients,
                                                               float* __restrict__ wave_gradient, long long count,
                                                               int samples, int frames, int n_fft, int hop)
{
    const int pad = n_fft / 2;
    for (unsigned long long index = mf::grid_first(); index < static_cast<unsigned long long>(count);
         index += mf::grid_stride())
    {
        const unsigned long long item = index / samples;
        const int i = static_cast<int>(index - item * samples);
        const float* item_frames = frame_gradients + item * frames * n_fft;
        float sum = padded_position_gradient(item_frames, i + pad, frames, n_fft, hop, 0.0f);
        if (i >= 1 && i <= pad) sum = padded_position_gradient(item_frames, pad - i, frames, n_fft, hop, sum);
        if (i >= samples - 1 - pad && i <= samples - 2)
            sum = padded_position_gradient(item_frames, pad + 2 * (samples - 1) - i, frames, n_fft, hop, sum);
        wave_gradient[index] = sum;
    }
}
MF_EXPORT_KERNEL(stft_magnitude_backward_overlap_f32)

extern "C" __global__ void log_clamp_f32(const float* x, float* y, long long count, float min)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const float value = x[i];
        y[i] = logf(value != value ? value : fmaxf(value, min));
    }
}
MF_EXPORT_KERNEL(log_clamp_f32)

extern "C" __global__ void log_clamp_backward_f32(const float* x, const float* dy, float* dx, long long count, float min)
{
    for (unsigned long long i = mf::grid_first(); i < static_cast<unsigned long long>(count); i += mf::grid_stride())
    {
        const float value = x[i];
        dx[i] = value >= min ? dy[i] / value : 0.0f;
    }
}
MF_EXPORT_KERNEL(log_clamp_backward_f32)
