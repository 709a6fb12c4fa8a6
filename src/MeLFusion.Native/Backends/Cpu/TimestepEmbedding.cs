using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.Cpu;

public sealed partial class CpuBackend : IKernel<TimestepEmbeddingOp>
{
    public unsafe void Execute(TimestepEmbeddingOp op, in KernelArgs args)
    {
        var timesteps = args.Input(0);
        var frequencies = op.Frequencies;
        int half = frequencies.Length;
        int dim = op.EmbeddingDim;
        // diffusers lays out [sin | cos], or [cos | sin] when flipped; an odd dim leaves the last column zero.
        int sinColumn = op.FlipSinToCos ? half : 0;
        int cosColumn = op.FlipSinToCos ? 0 : half;
        float* output = args.Output.Ptr<float>();
        for (int b = 0; b < timesteps.Dim(0); b++)
        {
            float t = timesteps.DType switch
            {
                DType.I32 => timesteps.Ptr<int>()[b],
                DType.I64 => timesteps.Ptr<long>()[b],
                _ => timesteps.Ptr<float>()[b],
            };
            float* row = output + (long)b * dim;
            for (int k = 0; k < half; k++)
            {
                // Two f32 roundings, as torch computes (t · frequency) · scale in f32 tensors.
                float argument = t * frequencies[k] * op.Scale;
                row[sinColumn + k] = (float)Math.Sin(argument);
                row[cosColumn + k] = (float)Math.Cos(argument);
            }
            if (dim % 2 == 1) row[dim - 1] = 0;
        }
    }
}
