using System.Numerics;
using System.Runtime.CompilerServices;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// The optimizer family: the AdamW step and the EMA update as single passes over the flat parameter buffer, fill, and
/// Σ x² in double over fixed chunks (partials added in chunk order, so any number of cores gives the same sum).
/// </summary>
public sealed partial class CpuBackend : IKernel<AdamWStepOp>, IKernel<EmaUpdateOp>, IKernel<FillOp>, IKernel<SumOfSquaresOp>,
    IKernelWorkspace<SumOfSquaresOp>
{
    /// <summary>Elements per partial sum of Σ x²: the split depends only on the element count.</summary>
    private const long SquareSumChunk = 1 << 16;

    public unsafe void Execute(AdamWStepOp op, in KernelArgs args)
    {
        var state = args.Input(0);
        long count = state.Dim(1);
        float* schedule = args.Input(2).Ptr<float>();
        var parameters = op.KernelCoefficients;
        var coefficients = new AdamWVectors(parameters, parameters.Step(schedule[0], schedule[1], schedule[2], *args.Input(3).Ptr<float>()));
        float* source = state.Ptr<float>(), grad = args.Input(1).Ptr<float>(), destination = args.Output.Ptr<float>();
        Simd.ParallelFor(count, (start, end) => AdamWRange(source, grad, destination, count, coefficients, start, end));
    }

    public unsafe void Execute(EmaUpdateOp op, in KernelArgs args)
    {
        float* ema = args.Input(0).Ptr<float>(), weights = args.Input(1).Ptr<float>(), destination = args.Output.Ptr<float>();
        float decay = (float)op.Decay, rest = op.OneMinusDecay;
        Simd.ParallelFor(args.Output.ElementCount, (start, end) =>
            Simd.Map<EmaOperator, ContiguousOperand, ContiguousOperand, BroadcastOperand, BroadcastOperand>(
                new(ema + start), new(weights + start), new(decay), new(rest), destination + start, end - start));
    }

    public unsafe void Execute(FillOp op, in KernelArgs args)
    {
        float* destination = args.Output.Ptr<float>();
        float value = op.Value;
        Simd.ParallelFor(args.Output.ElementCount, (start, end) =>
        {
            for (long at = start; at < end; at += int.MaxValue)
                new Span<float>(destination + at, (int)Math.Min(end - at, int.MaxValue)).Fill(value);
        });
    }

    public long WorkspaceBytes(SumOfSquaresOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        SquareSumChunks(inputs[0].Shape.ElementCount) * sizeof(double);

    public unsafe void Execute(SumOfSquaresOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        long count = args.Input(0).ElementCount, chunks = SquareSumChunks(count);
        double* partials = (double*)args.Workspace.Data;
        CpuParallel.For(chunks, 1, (first, last) =>
        {
            for (long c = first; c < last; c++)
                partials[c] = SumOfSquares(x + c * SquareSumChunk, Math.Min(SquareSumChunk, count - c * SquareSumChunk));
        });
        double total = 0;
        for (long c = 0; c < chunks; c++) total += partials[c];
        *args.Output.Ptr<float>() = (float)total;
    }

    private static long SquareSumChunks(long count) => (count + SquareSumChunk - 1) / SquareSumChunk;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe double SumOfSquares(float* x, long count)
    {
        Vector<double> low = Vector<double>.Zero, high = Vector<double>.Zero;
        long i = 0;
        for (; i <= count - Vector<float>.Count; i += Vector<float>.Count)
        {
            Vector.Widen(Vector.Load(x + i), out var l, out var h);
            low += l * l;
            high += h * h;
        }
        double sum = Vector.Sum(low + high);
        for (; i < count; i++) sum += (double)x[i] * x[i];
        return sum;
    }

    /// <summary>
    /// Elements [start, end) of the step. The tail shorter than a vector goes through the same vector code on padded
    /// copies, so every element gets exactly the same arithmetic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void AdamWRange(float* source, float* grad, float* destination, long count, AdamWVectors k, long start, long end)
    {
        float* w = source, m = source + count, v = source + 2 * count;
        float* newW = destination, newM = destination + count, newV = destination + 2 * count;
        int width = Vector<float>.Count;
        long i = start;
        for (; i <= end - width; i += width)
        {
            k.Update(Vector.Load(w + i), Vector.Load(m + i), Vector.Load(v + i), Vector.Load(grad + i), out var wi, out var mi, out var vi);
            wi.Store(newW + i);
            mi.Store(newM + i);
            vi.Store(newV + i);
        }
        int tail = (int)(end - i);
        if (tail == 0) return;
        float* lanes = stackalloc float[4 * width];
        new Span<float>(lanes, 4 * width).Clear();
        for (int j = 0; j < tail; j++)
        {
            lanes[j] = w[i + j];
            lanes[width + j] = m[i + j];
            lanes[2 * width + j] = v[i + j];
            lanes[3 * width + j] = grad[i + j];
        }
        k.Update(Vector.Load(lanes), Vector.Load(lanes + width), Vector.Load(lanes + 2 * width), Vector.Load(lanes + 3 * width),
            out var tw, out var tm, out var tv);
        for (int j = 0; j < tail; j++)
        {
            newW[i + j] = tw[j];
            newM[i + j] = tm[j];
            newV[i + j] = tv[j];
        }
    }

    /// <summary>The step's coefficients broadcast to vectors once per call.</summary>
    private readonly struct AdamWVectors(AdamWStepOp.Coefficients c, AdamWStepOp.StepScalars s)
    {
        private readonly Vector<float> _clip = new(s.Clip), _weightFactor = new(s.WeightFactor), _stepSize = new(s.StepSize),
            _biasCorrection2Sqrt = new(s.BiasCorrection2Sqrt), _beta1 = new(c.Beta1), _oneMinusBeta1 = new(c.OneMinusBeta1),
            _beta2 = new(c.Beta2), _oneMinusBeta2 = new(c.OneMinusBeta2), _epsilon = new(c.Epsilon);

        /// <summary>torch's operation order: mul_ then add_ for m, mul_ then addcmul_ for v, mul_ then addcdiv_ for w.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Update(Vector<float> w, Vector<float> m, Vector<float> v, Vector<float> grad,
            out Vector<float> newW, out Vector<float> newM, out Vector<float> newV)
        {
            var g = grad * _clip;
            newM = m * _beta1 + g * _oneMinusBeta1;
            newV = v * _beta2 + _oneMinusBeta2 * g * g;
            var denominator = Vector.SquareRoot(newV) / _biasCorrection2Sqrt + _epsilon;
            newW = w * _weightFactor - _stepSize * newM / denominator;
        }
    }
}

/// <summary>x·z + y·w: the EMA update with z = decay and w = 1 - decay, two roundings as torch's mul_ then add_.</summary>
internal readonly struct EmaOperator : IQuaternaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y, TV z, TV w) where TV : unmanaged, IFloatVector<TV> => x * z + y * w;
}
