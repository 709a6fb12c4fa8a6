using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// kernels/copy.cu: any strided view (permute, slice) made contiguous, by element size; views that transpose their two
/// innermost dims through a shared-memory tile (<see cref="CopyKernel.IsTiledTranspose"/>).
/// </summary>
public abstract partial class CudaKernelBackend : IKernel<CopyOp>
{
    /// <summary>
    /// Most blocks copy_transpose gets along the grid's y (row tiles) and z (planes) dimensions; it loops over the
    /// rest. CUDA allows 65535; tests lower it to run the loops on small tensors.
    /// </summary>
    internal int CopyTransposeMaxBlocksYZ { get; init; } = 65535;

    public void Execute(CopyOp op, in KernelArgs args)
    {
        Tensor source = args.Input(0), destination = args.Output;
        var index = StridedIndex.Create(op.Name, destination.Shape, source.Shape);
        Span<LaunchArg> launch = stackalloc LaunchArg[3 + 1 + 2 * StridedIndex.MaxRank];
        launch[0] = source;
        launch[1] = destination;
        launch[2] = destination.ElementCount;
        int n = 3;
        n += index.WriteDims(launch[n..]);
        n += index.WriteStrides(0, launch[n..]);
        string unit = UnitSuffix(source.DType.Size());
        if (destination.ElementCount > 0 && CopyKernel.IsTiledTranspose(index))
            Launch("copy_transpose_" + unit, CopyKernel.TransposeGrid(index, CopyTransposeMaxBlocksYZ), CopyKernel.TransposeBlock, 0, launch[..n]);
        else
            LaunchElementwise("copy_strided_" + unit, destination.ElementCount, launch[..n]);
    }
}

/// <summary>Kernel choice and launch geometry of kernels/copy.cu.</summary>
internal static class CopyKernel
{
    /// <summary>Rows and columns of copy_transpose's shared-memory tile.</summary>
    private const int Tile = 32;

    /// <summary>32 × 8 threads: a warp per tile row, each thread moving four elements of the tile.</summary>
    public static readonly Dim3 TransposeBlock = (Tile, 8);

    /// <summary>Smallest extent of both transposed dims for the tile to pay: below it most of a tile's threads idle.</summary>
    public const int MinTransposedExtent = 16;

    /// <summary>
    /// True when the coalesced view reads its second-to-last dim with source stride 1, i.e. the two innermost dims are
    /// a transpose of the source's (the common permute: [B, N, C] to [B, C, N], NCHW to NHWC), both at least
    /// <see cref="MinTransposedExtent"/>, with at most 2^31 planes over the outer dims. Strided copy would then read one
    /// element per memory transaction; the tiled kernel reads and writes whole rows.
    /// </summary>
    public static bool IsTiledTranspose(StridedIndex index)
    {
        int rank = index.Rank;
        if (rank < 2 || index.Stride(0, rank - 2) != 1) return false;
        return index.Dim(rank - 2) >= MinTransposedExtent && index.Dim(rank - 1) >= MinTransposedExtent &&
            Planes(index) <= int.MaxValue;
    }

    /// <summary>
    /// Grid of copy_transpose: x over column tiles, y over row tiles and z over planes, both at most
    /// <paramref name="maxBlocksYZ"/> (the kernel loops over the rest).
    /// </summary>
    public static Dim3 TransposeGrid(StridedIndex index, int maxBlocksYZ)
    {
        int rank = index.Rank;
        int rowTiles = (index.Dim(rank - 2) + Tile - 1) / Tile, columnTiles = (index.Dim(rank - 1) + Tile - 1) / Tile;
        return (columnTiles, Math.Min(rowTiles, maxBlocksYZ), (int)Math.Min(Planes(index), maxBlocksYZ));
    }

    /// <summary>Product of the dims outside the two innermost.</summary>
    private static long Planes(StridedIndex index)
    {
        long planes = 1;
        for (int d = 0; d < index.Rank - 2; d++) planes *= index.Dim(d);
        return planes;
    }
}
