using MeLFusion.Native.Backends.Cpu.Convolution;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// Polyphase layout of a transposed 1-D convolution. Output t = q·stride + r − padding (phase r, slot q) only meets
/// taps k = r + m·stride, m = 0, 1, …, and input x[q − m], so each phase is an ordinary convolution: a sum over m of
/// GEMMs W_k[Cout, Cin] · x[:, q − m] — no zero insertion, no wasted products. Slots are processed in chunks; the
/// workspace holds the weights repacked per tap [K][Cin][Cout], a zero-padded (and activated) input window
/// [Cin][chunk + taps − 1] and the per-phase results [stride][Cout][chunk], rows padded against cache-set aliasing.
/// </summary>
internal readonly record struct ConvTranspose1dPlan(Conv1dGeometry Geometry, int MaxTaps, int FirstSlot, int Slots,
    int ChunkSlots, int WindowStride, int PhaseStride, long WorkspaceFloats)
{
    /// <summary>Bound on the input window and phase results of one chunk (16 MiB).</summary>
    private const long ChunkBudgetFloats = 1L << 22;

    public static ConvTranspose1dPlan Create(Conv1dGeometry g)
    {
        int s = g.Stride;
        int maxTaps = (g.Kernel + s - 1) / s;
        int firstSlot = SlotStart(g, s - 1);
        int slots = SlotEnd(g, 0) - firstSlot;
        long perSlot = (long)s * g.OutChannels + g.InChannels;
        int chunk = (int)Math.Clamp(ChunkBudgetFloats / perSlot, Math.Min(64, slots), slots);
        int windowStride = ConvRows.PaddedStride(chunk + maxTaps - 1), phaseStride = ConvRows.PaddedStride(chunk);
        long workspace = (long)g.Kernel * g.OutChannels * g.InChannels
            + (long)g.InChannels * windowStride
            + (long)s * g.OutChannels * phaseStride;
        return new(g, maxTaps, firstSlot, slots, chunk, windowStride, phaseStride, workspace);
    }

    /// <summary>First slot q of phase r with an output inside [0, Lout).</summary>
    public static int SlotStart(in Conv1dGeometry g, int phase) => (g.Padding - phase + g.Stride - 1) / g.Stride;

    /// <summary>One past the last slot q of phase r with an output inside [0, Lout).</summary>
    public static int SlotEnd(in Conv1dGeometry g, int phase) => (g.OutLength + g.Padding - phase + g.Stride - 1) / g.Stride;

    public int Taps(int phase) => phase < Geometry.Kernel ? (Geometry.Kernel - phase + Geometry.Stride - 1) / Geometry.Stride : 0;

    public long WindowOffset => (long)Geometry.Kernel * Geometry.OutChannels * Geometry.InChannels;
    public long PhaseOffset => WindowOffset + (long)Geometry.InChannels * WindowStride;
}

public sealed partial class CpuBackend : IKernel<ConvTranspose1dOp>, IKernelWorkspace<ConvTranspose1dOp>
{
    /// <summary>Weights repacked per tap, an input window and the per-phase results.</summary>
    public long WorkspaceBytes(ConvTranspose1dOp op, ReadOnlySpan<TensorDesc> inputs, TensorDesc output) =>
        ConvTranspose1dPlan.Create(op.Geometry(inputs[0].Shape, inputs[1].Shape)).WorkspaceFloats * sizeof(float);

    public unsafe void Execute(ConvTranspose1dOp op, in KernelArgs args)
    {
        var x = args.Input(0);
        var weight = args.Input(1);
        var plan = ConvTranspose1dPlan.Create(op.Geometry(x.Shape, weight.Shape));
        float* bias = op.HasBias ? args.Input(2).Ptr<float>() : null;
        if (op.InputLeakySlope is { } slope)
            ConvTranspose1d(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, args.Output.Ptr<float>(), args.Workspace.Ptr<float>(), new LeakyReluMap(slope));
        else
            ConvTranspose1d(plan, x.Ptr<float>(), weight.Ptr<float>(), bias, args.Output.Ptr<float>(), args.Workspace.Ptr<float>(), new IdentityMap());
    }

    private static unsafe void ConvTranspose1d<TMap>(ConvTranspose1dPlan plan, float* x, float* weight, float* bias,
        float* output, float* workspace, TMap map) where TMap : struct, IElementMap
    {
        var g = plan.Geometry;
        int cin = g.InChannels, cout = g.OutChannels, s = g.Stride;
        float* taps = workspace;
        float* window = workspace + plan.WindowOffset;
        float* phases = workspace + plan.PhaseOffset;
        int chunk = plan.ChunkSlots, halo = plan.MaxTaps - 1;
        int windowStride = plan.WindowStride, phaseStride = plan.PhaseStride;

        // weight [Cin][Cout][K] -> per tap [K][Cin][Cout], the transposed A operand of each tap's GEMM. One input
        // channel's [Cout][K] block fits in L1, so it is read K times with stride K while each tap's row is written
        // sequentially.
        int kernel = g.Kernel;
        CpuParallel.For(cin, 8, (start, end) =>
        {
            for (long i = start; i < end; i++)
            {
                float* src = weight + i * cout * kernel;
                for (int k = 0; k < kernel; k++)
                {
                    float* dst = taps + ((long)k * cin + i) * cout;
                    float* column = src + k;
                    for (int o = 0; o < cout; o++) dst[o] = column[o * kernel];
                }
            }
        });

        int lastSlot = plan.FirstSlot + plan.Slots;
        for (int n = 0; n < g.Batch; n++)
        {
            float* xN = x + (long)n * cin * g.Length;
            float* y = output + (long)n * cout * g.OutLength;
            for (int first = plan.FirstSlot; first < lastSlot; first += chunk)
            {
                int end = Math.Min(first + chunk, lastSlot);
                // window[i][j] = map(x[i][first - halo + j]), zero outside the input.
                int slotBase = first;
                CpuParallel.For(cin, 16, (start, stop) =>
                {
                    for (long i = start; i < stop; i++)
                        ConvRows.Gather(xN + i * g.Length, g.Length, slotBase - halo, 1, window + i * windowStride, chunk + halo, map);
                });

                for (int r = 0; r < s; r++)
                {
                    int q0 = Math.Max(first, ConvTranspose1dPlan.SlotStart(g, r));
                    int q1 = Math.Min(end, ConvTranspose1dPlan.SlotEnd(g, r));
                    if (q1 <= q0) continue;
                    float* c = phases + (long)r * cout * phaseStride + (q0 - first);
                    int tapCount = plan.Taps(r);
                    if (tapCount == 0)
                        for (int o = 0; o < cout; o++) new Span<float>(c + (long)o * phaseStride, q1 - q0).Clear();
                    for (int m = 0; m < tapCount; m++)
                        CpuGemm.Sgemm(true, false, cout, q1 - q0, cin, 1f,
                            taps + (long)(r + m * s) * cin * cout, cout,
                            window + (q0 - first + halo - m), windowStride,
                            m == 0 ? 0f : 1f, c, phaseStride);
                }

                CpuParallel.For(cout, 4, (start, stop) =>
                {
                    for (long o = start; o < stop; o++)
                        InterleavePhases(g, phases + o * phaseStride, (long)cout * phaseStride, slotBase, end, bias is null ? 0f : bias[o],
                            y + o * g.OutLength);
                });
            }
        }
    }

    /// <summary>y[q·stride + r − padding] = phase r's result at slot q, plus bias, for slots in [first, end).</summary>
    private static unsafe void InterleavePhases(in Conv1dGeometry g, float* phases, long phaseStride, int first, int end,
        float bias, float* y)
    {
        for (int r = 0; r < g.Stride; r++)
        {
            int q0 = Math.Max(first, ConvTranspose1dPlan.SlotStart(g, r));
            int q1 = Math.Min(end, ConvTranspose1dPlan.SlotEnd(g, r));
            float* src = phases + r * phaseStride - first;
            float* dst = y + r - g.Padding;
            for (long q = q0; q < q1; q++) dst[q * g.Stride] = src[q] + bias;
        }
    }
}
