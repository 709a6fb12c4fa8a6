using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// The iteration space of a contiguous output over strided (possibly broadcast) operands, simplified for a kernel:
/// size-1 dims dropped and neighbouring dims merged wherever every operand steps through them uniformly, broadcast dims
/// given stride 0. Kernels index it with <c>mf::strided_offset</c> (kernels/common.cuh), which takes at most
/// <see cref="MaxRank"/> dims as separate launch arguments.
/// </summary>
internal sealed class StridedIndex
{
    /// <summary>mf::MaxRank: the dims a kernel accepts after coalescing.</summary>
    public const int MaxRank = 6;

    private readonly int[] _dims;
    private readonly long[][] _strides;

    private StridedIndex(int[] dims, long[][] strides)
    {
        _dims = dims;
        _strides = strides;
    }

    public int Rank => _dims.Length;

    /// <summary>Extent of coalesced dim <paramref name="d"/>.</summary>
    public int Dim(int d) => _dims[d];

    /// <summary>Operand <paramref name="operand"/>'s element stride along coalesced dim <paramref name="d"/>.</summary>
    public long Stride(int operand, int d) => _strides[operand][d];

    /// <summary>
    /// Coalesces <paramref name="output"/>'s dims (row-major, contiguous) over <paramref name="operands"/>, each aligned
    /// at the last dim and broadcast where it has size 1 or lacks the dim. Throws when more than
    /// <see cref="MaxRank"/> dims remain.
    /// </summary>
    public static StridedIndex Create(string op, TensorShape output, params TensorShape[] operands)
    {
        var dims = new List<int>();
        var strides = operands.Select(_ => new List<long>()).ToArray();
        for (int axis = 0; axis < output.Rank; axis++)
        {
            int dim = output[axis];
            if (dim == 1) continue;
            var axisStrides = operands.Select(s => AlignedStride(s, axis, output.Rank)).ToArray();
            bool merges = dims.Count > 0 && Enumerable.Range(0, operands.Length).All(k => strides[k][^1] == axisStrides[k] * dim);
            if (merges && (long)dims[^1] * dim <= int.MaxValue)
            {
                dims[^1] *= dim;
                for (int k = 0; k < operands.Length; k++) strides[k][^1] = axisStrides[k];
            }
            else
            {
                dims.Add(dim);
                for (int k = 0; k < operands.Length; k++) strides[k].Add(axisStrides[k]);
            }
        }
        if (dims.Count == 0)
        {
            dims.Add(1);
            foreach (var s in strides) s.Add(0);
        }
        if (dims.Count > MaxRank)
            throw new NotSupportedException(
                $"{op}: output {output} over operands {string.Join(", ", operands.Select(o => o.ToString()))} needs {dims.Count} strided dims after merging; the CUDA kernels take at most {MaxRank}");
        return new StridedIndex([.. dims], [.. strides.Select(s => s.ToArray())]);
    }

    /// <summary>Writes rank, then <see cref="MaxRank"/> dims (padded with 1), as the kernels' int parameters.</summary>
    public int WriteDims(Span<LaunchArg> args)
    {
        args[0] = Rank;
        for (int d = 0; d < MaxRank; d++) args[1 + d] = d < Rank ? _dims[d] : 1;
        return 1 + MaxRank;
    }

    /// <summary>Writes operand <paramref name="operand"/>'s <see cref="MaxRank"/> strides (padded with 0) as long long parameters.</summary>
    public int WriteStrides(int operand, Span<LaunchArg> args)
    {
        for (int d = 0; d < MaxRank; d++) args[d] = d < Rank ? _strides[operand][d] : 0L;
        return MaxRank;
    }

    /// <summary>
    /// Writes an already coalesced iteration space (rank, <see cref="MaxRank"/> dims, <see cref="MaxRank"/> strides),
    /// as the kernels' parameters; throws, naming <paramref name="op"/>, when it has more than <see cref="MaxRank"/> dims.
    /// </summary>
    public static int WriteShape(string op, TensorShape shape, Span<LaunchArg> args)
    {
        if (shape.Rank > MaxRank)
            throw new NotSupportedException($"{op}: {shape} has {shape.Rank} strided dims; the CUDA kernels take at most {MaxRank}");
        args[0] = shape.Rank;
        for (int d = 0; d < MaxRank; d++)
        {
            args[1 + d] = d < shape.Rank ? shape[d] : 1;
            args[1 + MaxRank + d] = d < shape.Rank ? shape.Strides[d] : 0L;
        }
        return 1 + 2 * MaxRank;
    }

    /// <summary>Stride of <paramref name="shape"/> along output axis <paramref name="axis"/>, right-aligned; 0 where broadcast.</summary>
    private static long AlignedStride(TensorShape shape, int axis, int outputRank)
    {
        int own = axis - (outputRank - shape.Rank);
        return own < 0 || shape[own] == 1 ? 0 : shape.Strides[own];
    }
}
