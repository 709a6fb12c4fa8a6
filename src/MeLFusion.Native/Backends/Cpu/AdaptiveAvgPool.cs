using System.Numerics;
using System.Runtime.Intrinsics;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<AdaptiveAvgPoolOp>, IKernel<AdaptiveAvgPoolGradientOp>
{
    public unsafe void Execute(AdaptiveAvgPoolOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        if (x.ElementCount == 0) return;
        float* src = x.Ptr<float>();
        float* dst = args.Output.Ptr<float>();
        int axis = op.ResolveFirstAxis(x.Rank);
        if (op.OutputSizes.Length == 1)
        {
            long inner = 1;
            for (int a = axis + 1; a < x.Rank; a++) inner *= x.Dim(a);
            AdaptivePooling.Pool(src, dst, x.ElementCount / (x.Dim(axis) * inner), x.Dim(axis), op.OutputSizes[0], inner);
            return;
        }
        // 2-D pooling is separable: average over H of the averages over W. Pool first the dim that leaves the smaller
        // intermediate, which is also the cheaper order.
        int height = x.Dim(-2), width = x.Dim(-1);
        int outHeight = op.OutputSizes[0], outWidth = op.OutputSizes[1];
        long outer = x.ElementCount / ((long)height * width);
        float* mid = args.Workspace.Ptr<float>();
        if (AdaptiveAvgPoolOp.TwoDIntermediateElements(outer, height, width, outHeight, outWidth).PoolHeightFirst)
        {
            AdaptivePooling.Pool(src, mid, outer, height, outHeight, width);
            AdaptivePooling.Pool(mid, dst, outer * outHeight, width, outWidth, 1);
        }
        else
        {
            AdaptivePooling.Pool(src, mid, outer * height, width, outWidth, 1);
            AdaptivePooling.Pool(mid, dst, outer, height, outHeight, outWidth);
        }
    }

    public unsafe void Execute(AdaptiveAvgPoolGradientOp op, in KernelArgs args)
    {
        var dy = args.Input(0);
        if (dy.ElementCount == 0) return;
        var (first, second) = op.Passes(dy.Shape);
        float* dx = args.Output.Ptr<float>();
        if (second is not { } last)
        {
            AdaptivePooling.Spread(dy.Ptr<float>(), dx, first);
            return;
        }
        float* middle = args.Workspace.Ptr<float>();
        AdaptivePooling.Spread(dy.Ptr<float>(), middle, first);
        AdaptivePooling.Spread(middle, dx, last);
    }
}

/// <summary>1-D adaptive average pooling of the middle dim of a contiguous [outer, n, inner] f32 array.</summary>
internal static unsafe class AdaptivePooling
{
    /// <summary>[outer, n, inner] -> [outer, m, inner]; bin i averages inputs [floor(i·n/m), ceil((i+1)·n/m)).</summary>
    public static void Pool(float* src, float* dst, long outer, int n, int m, long inner)
    {
        long averageBin = (n + m - 1) / m + 1;
        long minChunk = Math.Max(1, 16384 / (averageBin * inner));
        CpuParallel.For(outer * m, minChunk, (start, end) => PoolRange(src, dst, n, m, inner, start, end));
    }

    /// <summary>
    /// The gradient of <see cref="Pool"/>: [outer, bins, inner] -> [outer, inputs, inner], input i receiving
    /// Σ dy[b] / |bin b| over the bins b in [floor(i·bins/inputs), ceil((i+1)·bins/inputs)) that contain it, in bin order.
    /// </summary>
    public static void Spread(float* dy, float* dx, PoolPass pass)
    {
        int bins = pass.Bins, inputs = pass.Inputs;
        long inner = pass.Inner;
        long averageBins = (bins + inputs - 1) / inputs + 1;
        CpuParallel.For(pass.Outer * inputs, Math.Max(1, 16384 / (averageBins * inner)), (start, end) =>
        {
            for (long row = start; row < end; row++)
            {
                long o = row / inputs;
                int i = (int)(row - o * inputs);
                // The bins holding input i: the same formula as a pool of `bins` inputs into `inputs` bins.
                long first = (long)i * bins / inputs, last = ((long)(i + 1) * bins + inputs - 1) / inputs;
                float* source = dy + (o * bins + first) * inner;
                float* destination = dx + row * inner;
                for (long b = first; b < last; b++, source += inner)
                {
                    long binStart = b * inputs / bins, binEnd = ((b + 1) * inputs + bins - 1) / bins;
                    AccumulateScaled(source, 1f / (binEnd - binStart), destination, inner, overwrite: b == first);
                }
            }
        });
    }

    /// <summary>destination = (or +=) scale · source over <paramref name="length"/> floats.</summary>
    private static void AccumulateScaled(float* source, float scale, float* destination, long length, bool overwrite)
    {
        long j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vscale = new Vector<float>(scale);
            for (; j <= length - Vector<float>.Count; j += Vector<float>.Count)
            {
                var term = Vector.Load(source + j) * vscale;
                (overwrite ? term : Vector.Load(destination + j) + term).Store(destination + j);
            }
        }
        for (; j < length; j++)
            destination[j] = overwrite ? source[j] * scale : destination[j] + source[j] * scale;
    }

    /// <summary>Output rows [start, end) of <see cref="Pool"/>, each an (outer, bin) pair.</summary>
    private static void PoolRange(float* src, float* dst, int n, int m, long inner, long start, long end)
    {
        long o = start / m;
        var bins = new BinWalker(n, m, (int)(start - o * m));
        for (long task = start; task < end; task++)
        {
            var (first, count) = bins.Next();
            float scale = 1f / count;
            float* input = src + (o * n + first) * inner;
            if (inner == 1)
                dst[task] = SumContiguous(input, count) * scale;
            else
                AverageRows(input, inner, count, dst + task * inner, scale);
            if (bins.Index == m)
            {
                bins = new BinWalker(n, m, 0);
                o++;
            }
        }
    }

    /// <summary>output[j] = scale · Σ_k input[k·width + j] for k &lt; <paramref name="rows"/>, j &lt; <paramref name="width"/>.</summary>
    private static void AverageRows(float* input, long width, int rows, float* output, float scale)
    {
        long j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vscale = Vector512.Create(scale);
            for (; j <= width - Vector512<float>.Count; j += Vector512<float>.Count)
            {
                var sum = Vector512.Load(input + j);
                for (int k = 1; k < rows; k++) sum += Vector512.Load(input + k * width + j);
                (sum * vscale).Store(output + j);
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var vscale = Vector256.Create(scale);
            for (; j <= width - Vector256<float>.Count; j += Vector256<float>.Count)
            {
                var sum = Vector256.Load(input + j);
                for (int k = 1; k < rows; k++) sum += Vector256.Load(input + k * width + j);
                (sum * vscale).Store(output + j);
            }
        }
        if (Vector128.IsHardwareAccelerated)
        {
            var vscale = Vector128.Create(scale);
            for (; j <= width - Vector128<float>.Count; j += Vector128<float>.Count)
            {
                var sum = Vector128.Load(input + j);
                for (int k = 1; k < rows; k++) sum += Vector128.Load(input + k * width + j);
                (sum * vscale).Store(output + j);
            }
        }
        for (; j < width; j++)
        {
            float sum = input[j];
            for (int k = 1; k < rows; k++) sum += input[k * width + j];
            output[j] = sum * scale;
        }
    }

    private static float SumContiguous(float* input, int count)
    {
        int i = 0;
        float sum = 0;
        if (Vector512.IsHardwareAccelerated && count >= Vector512<float>.Count)
        {
            var acc = Vector512<float>.Zero;
            for (; i <= count - Vector512<float>.Count; i += Vector512<float>.Count) acc += Vector512.Load(input + i);
            sum = Vector512.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && count >= Vector256<float>.Count)
        {
            var acc = Vector256<float>.Zero;
            for (; i <= count - Vector256<float>.Count; i += Vector256<float>.Count) acc += Vector256.Load(input + i);
            sum = Vector256.Sum(acc);
        }
        else if (Vector128.IsHardwareAccelerated && count >= Vector128<float>.Count)
        {
            var acc = Vector128<float>.Zero;
            for (; i <= count - Vector128<float>.Count; i += Vector128<float>.Count) acc += Vector128.Load(input + i);
            sum = Vector128.Sum(acc);
        }
        for (; i < count; i++) sum += input[i];
        return sum;
    }

    /// <summary>
    /// Walks the bins of n inputs into m outputs without a division per bin: bin i starts at floor(i·n/m), kept as
    /// quotient and remainder of i·n by m, and ends where bin i+1 starts, plus one when that start is fractional.
    /// </summary>
    private struct BinWalker
    {
        private readonly long _step, _stepRemainder, _m;
        private long _start, _remainder;

        public BinWalker(long n, long m, int index)
        {
            _m = m;
            _step = n / m;
            _stepRemainder = n % m;
            _start = index * n / m;
            _remainder = index * n % m;
            Index = index;
        }

        public int Index { get; private set; }

        /// <summary>The current bin's first input and length; moves to the next bin.</summary>
        public (long First, int Count) Next()
        {
            long first = _start;
            _start += _step;
            _remainder += _stepRemainder;
            if (_remainder >= _m)
            {
                _start++;
                _remainder -= _m;
            }
            Index++;
            long end = _start + (_remainder != 0 ? 1 : 0);
            return (first, (int)(end - first));
        }
    }
}
