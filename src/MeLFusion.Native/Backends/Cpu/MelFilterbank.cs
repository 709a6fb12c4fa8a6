using System.Numerics;
using System.Runtime.Intrinsics;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<MelSpectrogramOp>, IKernel<LogClampOp>, IKernel<LogClampGradientOp>
{
    public unsafe void Execute(MelSpectrogramOp op, in KernelArgs args)
    {
        var magnitude = args.Input(0);
        var filterbank = args.Input(1);
        int batch = magnitude.Dim(0), bins = magnitude.Dim(1), frames = magnitude.Dim(2), mels = filterbank.Dim(0);
        for (int b = 0; b < batch; b++)
            CpuGemm.Sgemm(false, false, mels, frames, bins, 1f,
                filterbank.Ptr<float>(), bins,
                magnitude.Ptr<float>() + (long)b * bins * frames, frames,
                0f, args.Output.Ptr<float>() + (long)b * mels * frames, frames);
    }

    public unsafe void Execute(LogClampOp op, in KernelArgs args)
    {
        float* source = args.Input(0).Ptr<float>();
        float* destination = args.Output.Ptr<float>();
        float min = op.Min;
        CpuParallel.For(args.Output.ElementCount, 16384, (start, end) =>
        {
            long i = start;
            if (Vector512.IsHardwareAccelerated)
            {
                var floor = Vector512.Create(min);
                for (; i + Vector512<float>.Count <= end; i += Vector512<float>.Count)
                    Vector512.Log(Vector512.Max(Vector512.Load(source + i), floor)).Store(destination + i);
            }
            if (Vector256.IsHardwareAccelerated)
            {
                var floor = Vector256.Create(min);
                for (; i + Vector256<float>.Count <= end; i += Vector256<float>.Count)
                    Vector256.Log(Vector256.Max(Vector256.Load(source + i), floor)).Store(destination + i);
            }
            if (Vector128.IsHardwareAccelerated)
            {
                var floor = Vector128.Create(min);
                for (; i + Vector128<float>.Count <= end; i += Vector128<float>.Count)
                    Vector128.Log(Vector128.Max(Vector128.Load(source + i), floor)).Store(destination + i);
            }
            for (; i < end; i++)
                destination[i] = MathF.Log(MathF.Max(source[i], min));
        });
    }

    public unsafe void Execute(LogClampGradientOp op, in KernelArgs args)
    {
        float* x = args.Input(0).Ptr<float>();
        float* dy = args.Input(1).Ptr<float>();
        float* dx = args.Output.Ptr<float>();
        float min = op.Min;
        CpuParallel.For(args.Output.ElementCount, 16384, (start, end) =>
        {
            long i = start;
            if (Vector.IsHardwareAccelerated)
            {
                var floor = new Vector<float>(min);
                for (; i + Vector<float>.Count <= end; i += Vector<float>.Count)
                {
                    var value = Vector.Load(x + i);
                    // An ordered comparison: false for NaN, whose gradient is 0 like below the floor.
                    Vector.ConditionalSelect(Vector.GreaterThanOrEqual(value, floor), Vector.Load(dy + i) / value, Vector<float>.Zero)
                        .Store(dx + i);
                }
            }
            for (; i < end; i++)
                dx[i] = x[i] >= min ? dy[i] / x[i] : 0f;
        });
    }
}
