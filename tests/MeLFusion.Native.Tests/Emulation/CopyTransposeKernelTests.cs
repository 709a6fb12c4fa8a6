using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Backends.CudaKernels;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Ops;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// kernels/copy.cu's tiled transpose (copy_transpose_*): which views take it, and that it copies them bit for bit like
/// the CPU CopyOp, for 2-, 4- and 8-byte elements, odd sizes that leave partial tiles on both edges, under every
/// emulator schedule (its tile passes through shared memory between two barriers).
/// </summary>
public class CopyTransposeKernelTests
{
    /// <summary>View name -> input dims and the views applied; every one coalesces to an inner transpose.</summary>
    private static readonly Dictionary<string, (int[] Shape, Func<GraphBuilder, Value, Value> View)> Views = new()
    {
        ["bnc_to_bcn"] = ([3, 37, 45], (g, x) => g.Permute(x, 0, 2, 1)),
        ["nchw_to_nhwc"] = ([2, 20, 7, 9], (g, x) => g.Permute(x, 0, 2, 3, 1)),
        ["sliced_columns_transposed"] = ([40, 50], (g, x) => g.Permute(g.Slice(x, 1, 3, 37), 1, 0)),
        ["strided_outer_dim"] = ([20, 17, 19], (g, x) => g.Permute(x, 1, 2, 0)),
        ["two_dims_many_tiles"] = ([70, 33], (g, x) => g.Permute(x, 1, 0)),
    };

    public static TheoryData<string, DType> ViewsAndTypes()
    {
        var data = new TheoryData<string, DType>();
        foreach (string view in Views.Keys)
            foreach (var dtype in new[] { DType.F32, DType.F16, DType.I64 })
                data.Add(view, dtype);
        return data;
    }

    [Theory]
    [MemberData(nameof(ViewsAndTypes))]
    public void TiledTransposeCopiesLikeTheCpu(string view, DType dtype)
    {
        var (shape, build) = Views[view];
        var input = RawGraph.RandomBits(dtype, view.Length, shape);
        var expected = RawGraph.Run("cpu", (g, v) => build(g, v[0]), input);
        foreach (var (schedule, threads) in new[] { (EmulatorSchedule.InOrder, 1), (EmulatorSchedule.Reverse, 2), (EmulatorSchedule.Random, 3) })
        {
            using var device = new EmulatedDevice(schedule, seed: 8, threads);
            RawGraph.Equal(expected, RawGraph.Run(device.Backend, (g, v) => build(g, v[0]), input), $"{view} {dtype} {schedule}");
        }
    }

    /// <summary>
    /// One block along y and z: each block walks every row tile of every plane, reusing its shared tile, so the barrier
    /// before the next tile overwrites it matters.
    /// </summary>
    [Theory]
    [InlineData(EmulatorSchedule.Reverse)]
    [InlineData(EmulatorSchedule.Random)]
    public void BlocksLoopingOverRowTilesAndPlanesCopyLikeTheCpu(EmulatorSchedule schedule)
    {
        foreach (string view in new[] { "bnc_to_bcn", "strided_outer_dim", "two_dims_many_tiles" })
        {
            var (shape, build) = Views[view];
            var input = RawGraph.RandomBits(DType.F32, 3, shape);
            var expected = RawGraph.Run("cpu", (g, v) => build(g, v[0]), input);
            using var device = new EmulatedDevice(schedule, seed: 2);
            using var backend = new CudaEmulatedBackend { CopyTransposeMaxBlocksYZ = 1 };
            RawGraph.Equal(expected, RawGraph.Run(backend, (g, v) => build(g, v[0]), input), $"{view} {schedule}");
        }
    }

    [Theory]
    [InlineData(new[] { 3, 37, 45 }, new[] { 0, 2, 1 }, true)]
    [InlineData(new[] { 2, 20, 7, 9 }, new[] { 0, 2, 3, 1 }, true)] // H and W merge: [2, 63, 20] over source [2, 20, 63]
    [InlineData(new[] { 2, 40, 33, 29 }, new[] { 0, 2, 1, 3 }, false)] // the innermost dim stays contiguous
    [InlineData(new[] { 2, 5, 40 }, new[] { 0, 2, 1 }, false)] // 5 rows: most of a tile would idle
    [InlineData(new[] { 3, 37, 45 }, new[] { 2, 1, 0 }, false)] // source stride 37·45 along the output's rows
    public void InnerTransposesOfAtLeastSixteenBySixteenTakeTheTiledKernel(int[] shape, int[] order, bool tiled)
    {
        var view = new TensorShape(shape).Permute(order);
        var output = new TensorShape(view.Dims.ToArray());
        Assert.Equal(tiled, CopyKernel.IsTiledTranspose(StridedIndex.Create("copy", output, view)));
    }
}
