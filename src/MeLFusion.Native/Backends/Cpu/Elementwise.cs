using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<BinaryOp>, IKernel<ScalarOp>, IKernel<ClampGradientOp>
{
    public unsafe void Execute(ClampGradientOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>(), dy = args.Input(1).Ptr<float>(), dx = args.Output.Ptr<float>();
        float min = op.Min, max = op.Max;
        Simd.ParallelFor(args.Output.ElementCount, (start, end) =>
        {
            for (long i = start; i < end; i++) dx[i] = x[i] >= min && x[i] <= max ? dy[i] : 0f;
        });
    }

    public unsafe void Execute(BinaryOp op, in KernelArgs args)
    {
        var a = args.Input(0);
        var b = args.Input(1);
        var output = args.Output;
        switch (op.Operation)
        {
            case BinaryOperation.Add: ElementwiseKernels.Broadcast<AddOperator>(a, b.Ptr<float>(), b.Shape, output); break;
            case BinaryOperation.Subtract: ElementwiseKernels.Broadcast<SubtractOperator>(a, b.Ptr<float>(), b.Shape, output); break;
            case BinaryOperation.Multiply: ElementwiseKernels.Broadcast<MultiplyOperator>(a, b.Ptr<float>(), b.Shape, output); break;
            case BinaryOperation.Divide: ElementwiseKernels.Broadcast<DivideOperator>(a, b.Ptr<float>(), b.Shape, output); break;
            default: throw new NotSupportedException($"cpu: binary operation {op.Operation} has no kernel");
        }
    }

    /// <summary>A binary op whose second operand is a rank-0 tensor holding the constant, broadcast everywhere.</summary>
    public unsafe void Execute(ScalarOp op, in KernelArgs args)
    {
        // The broadcast walker finishes before this frame returns, so its workers may read the constant here.
        float* value = stackalloc float[1];
        *value = op.Value;
        switch (op.Operation)
        {
            case ScalarOperation.Multiply: ElementwiseKernels.Broadcast<MultiplyOperator>(args.Input(0), value, ElementwiseKernels.ScalarShape, args.Output); break;
            case ScalarOperation.Add: ElementwiseKernels.Broadcast<AddOperator>(args.Input(0), value, ElementwiseKernels.ScalarShape, args.Output); break;
            case ScalarOperation.Maximum: ElementwiseKernels.Broadcast<MaxOperator>(args.Input(0), value, ElementwiseKernels.ScalarShape, args.Output); break;
            case ScalarOperation.Minimum: ElementwiseKernels.Broadcast<MinOperator>(args.Input(0), value, ElementwiseKernels.ScalarShape, args.Output); break;
            default: throw new NotSupportedException($"cpu: scalar operation {op.Operation} has no kernel");
        }
    }
}

/// <summary>min(x, y) for a non-NaN bound y; NaN in x stays NaN.</summary>
internal readonly struct MinOperator : IBinaryOperator
{
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => TV.Clamp(x, TV.Create(float.NegativeInfinity), y);
}

internal static unsafe class ElementwiseKernels
{
    public static readonly TensorShape ScalarShape = new();

    /// <summary>
    /// d = TOp(a, b) with a and b broadcast to the contiguous output. The iteration space is coalesced first (size-1
    /// dims dropped, neighbouring dims merged wherever both operands step through them uniformly), so typical cases
    /// reduce to long inner runs where each operand is contiguous (stride 1) or broadcast (stride 0) and run through
    /// the SIMD driver; any other inner stride falls back to a strided scalar loop. Work is split by output elements.
    /// </summary>
    public static void Broadcast<TOp>(Tensor a, float* b, TensorShape bShape, Tensor output) where TOp : IBinaryOperator
    {
        long count = output.ElementCount;
        if (count == 0) return;
        var space = IterationSpace.Create(output.Shape, a.Shape, bShape);
        float* pa = a.Ptr<float>();
        float* pd = output.Ptr<float>();
        Simd.ParallelFor(count, (start, end) =>
        {
            Span<long> offsets = stackalloc long[2];
            long inner = space.InnerLength;
            long strideA = space.InnerStride(0), strideB = space.InnerStride(1);
            for (long position = start; position < end;)
            {
                long row = position / inner, column = position % inner;
                long length = Math.Min(inner - column, end - position);
                space.RowOffsets(row, offsets);
                float* x = pa + offsets[0] + column * strideA;
                float* y = b + offsets[1] + column * strideB;
                float* d = pd + position;
                if (strideA == 1 && strideB == 1)
                    Simd.Map<TOp, ContiguousOperand, ContiguousOperand>(new(x), new(y), d, length);
                else if (strideA == 1 && strideB == 0)
                    Simd.Map<TOp, ContiguousOperand, BroadcastOperand>(new(x), new(*y), d, length);
                else if (strideA == 0 && strideB == 1)
                    Simd.Map<TOp, BroadcastOperand, ContiguousOperand>(new(*x), new(y), d, length);
                else
                    Simd.MapStrided<TOp>(x, strideA, y, strideB, d, length);
                position += length;
            }
        });
    }

    /// <summary>
    /// The output's index space after coalescing, with each operand's element strides (0 where it is broadcast).
    /// Dims run outer to inner; the last is the inner run handed to the SIMD driver.
    /// </summary>
    private sealed class IterationSpace(long[] dims, long[][] strides)
    {
        public long InnerLength => dims[^1];

        public long InnerStride(int operand) => strides[operand][^1];

        /// <summary>Element offsets of each operand at the start of inner run <paramref name="row"/>.</summary>
        public void RowOffsets(long row, Span<long> offsets)
        {
            offsets.Clear();
            for (int axis = dims.Length - 2; axis >= 0; axis--)
            {
                long index = row % dims[axis];
                row /= dims[axis];
                for (int k = 0; k < offsets.Length; k++) offsets[k] += index * strides[k][axis];
            }
        }

        public static IterationSpace Create(TensorShape output, params TensorShape[] operands)
        {
            var dims = new List<long>();
            var strides = operands.Select(_ => new List<long>()).ToArray();
            for (int axis = 0; axis < output.Rank; axis++)
            {
                long dim = output.Dims[axis];
                if (dim == 1) continue;
                var axisStrides = operands.Select(s => AlignedStride(s, axis, output.Rank)).ToArray();
                bool merges = dims.Count > 0 && axisStrides.Select((stride, k) => strides[k][^1] == stride * dim).All(m => m);
                if (merges) dims[^1] *= dim;
                else dims.Add(dim);
                for (int k = 0; k < operands.Length; k++)
                {
                    if (merges) strides[k][^1] = axisStrides[k];
                    else strides[k].Add(axisStrides[k]);
                }
            }
            if (dims.Count == 0)
            {
                dims.Add(1);
                foreach (var s in strides) s.Add(0);
            }
            return new IterationSpace(dims.ToArray(), strides.Select(s => s.ToArray()).ToArray());
        }

        /// <summary>Stride of <paramref name="shape"/> along output axis <paramref name="axis"/>, right-aligned; 0 where broadcast.</summary>
        private static long AlignedStride(TensorShape shape, int axis, int outputRank)
        {
            int own = axis - (outputRank - shape.Rank);
            return own < 0 || shape.Dims[own] == 1 ? 0 : shape.Strides[own];
        }
    }
}
