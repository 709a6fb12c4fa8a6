using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<ViewScatterOp>
{
    public unsafe void Execute(ViewScatterOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* y = args.Output.Ptr<float>();
        new Span<float>(y, checked((int)args.Output.ElementCount)).Clear();
        if (op.View.ElementCount == 0) return;
        var view = StridedLayout.Coalesce(op.View);
        int last = view.Rank - 1;
        int run = view.Dims[last];
        long runStride = view.Strides[last];
        long runs = op.View.ElementCount / run;
        int[] outerAxes = Enumerable.Range(0, last).ToArray();
        CpuParallel.For(runs, Math.Max(1, 16384 / run), (start, end) =>
        {
            Span<int> index = stackalloc int[outerAxes.Length];
            long offset = op.ElementOffset + view.Offset(start, outerAxes, index);
            for (long r = start; r < end; r++)
            {
                float* source = x + r * run;
                float* destination = y + offset;
                for (int i = 0; i < run; i++) destination[i * runStride] = source[i];
                offset += view.Advance(outerAxes, index);
            }
        });
    }
}
