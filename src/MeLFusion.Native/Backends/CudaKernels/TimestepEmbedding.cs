using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>kernels/timestep_embedding.cu: frequencies recomputed per element with the op's f32 roundings.</summary>
public abstract partial class CudaKernelBackend : IKernel<TimestepEmbeddingOp>
{
    public void Execute(TimestepEmbeddingOp op, in KernelArgs args)
    {
        Tensor timesteps = args.Input(0), output = args.Output;
        string type = timesteps.DType switch
        {
            DType.F32 => "f32",
            DType.I32 => "i32",
            DType.I64 => "i64",
            _ => throw new NotSupportedException($"{Name}: {op.Name} has no kernel for timesteps {timesteps}"),
        };
        // The same f32 values TimestepEmbeddingOp computes its frequencies from.
        float negLogPeriod = (float)-Math.Log(op.MaxPeriod);
        float denominator = op.EmbeddingDim / 2 - op.DownscaleFreqShift;
        LaunchElementwise("timestep_embedding_" + type, output.ElementCount, timesteps, output, timesteps.Dim(0),
            op.EmbeddingDim, op.FlipSinToCos ? 1 : 0, negLogPeriod, denominator, op.Scale);
    }
}
