using MeLFusion.Native.Backends.Cpu.Convolution;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>How the CPU kernel computes one conv1d, and the workspace that takes; a pure function of the geometry.</summary>
internal readonly record struct Conv1dPlan(bool DirectGemm, Conv1dGeometry Geometry, int ChunkColumns, long WorkspaceFloats)
{
    /// <summary>Upper bound on the im2col matrix of one chunk (8 MiB): large enough for GEMM efficiency, small enough for L3.</summary>
    private const long Im2ColBudgetFloats = 1L << 21;

    public static Conv1dPlan Create(Conv1dGeometry g, bool inputActivation)
    {
        // A pointwise conv of the raw input multiplies the weight by the input as it is.
        if (g.Kernel == 1 && g.Stride == 1 && g.Padding == 0 && !inputActivation)
            return new(true, g, 0, 0);
        long rows = (long)g.InChannels * g.Kernel;
        int chunk = ConvRows.ChunkColumns(rows, g.OutLength, Im2ColBudgetFloats, 64);
        return new(false, g, chunk, rows * chunk);
    }
}

public sealed partial class CpuBackend : IKernel<Conv1dOp>
{
    public unsafe void Execute(Conv1dOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var weight = args.Input(1);
        var plan = Conv1dPlan.Create(op.Geometry(x.Shape, weight.Shape), op.InputLeakySlope.HasValue);
        float* bias = op.HasBias ? args.Input(op.BiasIndex).Ptr<float>() : null;
        float* residual = op.HasResidual ? args.Input(op.ResidualIndex).Ptr<float>() : null;
        float* output = args.Output.Ptr<float>();
        if (plan.DirectGemm)
            Conv1dGemm(plan.Geometry, x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output);
        else if (op.InputLeakySlope is { } slope)
            Conv1dIm2Col(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output, args.Workspace.Ptr<float>(), new LeakyReluMap(slope));
        else
            Conv1dIm2Col(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, residual, output, args.Workspace.Ptr<float>(), new IdentityMap());
    }

    private static unsafe void Conv1dGemm(Conv1dGeometry g, float* x, float* weight, float* bias, float* residual, float* output)
    {
        for (int n = 0; n < g.Batch; n++)
        {
            float* y = output + (long)n * g.OutChannels * g.OutLength;
            float* r = residual is null ? null : residual + (long)n * g.OutChannels * g.OutLength;
            float beta = ConvRows.InitializeOutput(y, g.OutLength, g.OutChannels, g.OutLength, bias, r, g.OutLength) ? 1f : 0f;
            CpuGemm.Sgemm(false, false, g.OutChannels, g.OutLength, g.InChannels, 1f,
                weight, g.InChannels, x + (long)n * g.InChannels * g.Length, g.Length, beta, y, g.OutLength);
        }
    }

    /// <summary>
    /// Per chunk of output positions: im2col rows (channel, tap) gathered through <paramref name="map"/> (the fused
    /// leaky-ReLU), then Y[:, chunk] = W[Cout, Cin·K] · columns — the weight is already in that layout.
    /// </summary>
    private static unsafe void Conv1dIm2Col<TMap>(Conv1dPlan plan, float* x, float* weight, float* bias, float* residual,
        float* output, float* columns, TMap map) where TMap : struct, IElementMap
    {
        var g = plan.Geometry;
        int rows = g.InChannels * g.Kernel;
        int chunk = plan.ChunkColumns;
        for (int n = 0; n < g.Batch; n++)
        {
            float* xN = x + (long)n * g.InChannels * g.Length;
            float* y = output + (long)n * g.OutChannels * g.OutLength;
            float* r = residual is null ? null : residual + (long)n * g.OutChannels * g.OutLength;
            for (int start = 0; start < g.OutLength; start += chunk)
            {
                int count = Math.Min(chunk, g.OutLength - start);
                long origin = (long)start * g.Stride - g.Padding;
                CpuParallel.For(rows, 8, (rowStart, rowEnd) =>
                {
                    for (long row = rowStart; row < rowEnd; row++)
                    {
                        long channel = row / g.Kernel, tap = row % g.Kernel;
                        ConvRows.Gather(xN + channel * g.Length, g.Length, origin + tap * g.Dilation, g.Stride,
                            columns + row * chunk, count, map);
                    }
                });
                float beta = ConvRows.InitializeOutput(y + start, g.OutLength, g.OutChannels, count, bias,
                    r is null ? null : r + start, g.OutLength) ? 1f : 0f;
                CpuGemm.Sgemm(false, false, g.OutChannels, count, rows, 1f, weight, rows, columns, chunk, beta, y + start, g.OutLength);
            }
        }
    }
}
