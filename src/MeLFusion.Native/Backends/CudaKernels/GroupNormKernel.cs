using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// Launch configuration of kernels/group_norm.cu, shared by the cuda and cuda-emulated backends: one block per
/// (group, batch item), statistics in f32, a deterministic two-pass reduction.
/// </summary>
public static class GroupNormKernel
{
    /// <summary>Threads per block for large groups; small groups get the next multiple of 32 of their size.</summary>
    public const int MaxBlockThreads = 256;

    /// <summary>Dynamic shared memory a kernel may use without opting in (cuFuncSetAttribute) on every GPU.</summary>
    public const int DefaultSharedLimit = 48 * 1024;

    /// <summary>
    /// y = group_norm(x) * gamma + beta, then SiLU when <paramref name="fuseSilu"/>. x and y are contiguous
    /// [N, C, spatial...] tensors of the same shape and dtype (f32, f16 or bf16); gamma and beta are f32 [C] or absent
    /// (1 and 0).
    /// </summary>
    public static void Launch(IKernelLauncher launcher, Tensor x, Tensor? gamma, Tensor? beta, Tensor y, int groups,
        float eps, bool fuseSilu)
    {
        const string op = "group_norm";
        if (x.Rank < 2 || !x.IsContiguous)
            throw new ArgumentException($"{op}: x {x} must be a contiguous [N, C, ...] tensor");
        if (y.DType != x.DType || !y.Shape.SameDims(x.Shape) || !y.IsContiguous)
            throw new ArgumentException($"{op}: y {y} must be a contiguous tensor like x {x}");
        int batch = x.Dim(0), channels = x.Dim(1);
        if (groups <= 0 || channels % groups != 0)
            throw new ArgumentException($"{op}: {channels} channels of x {x} do not split into {groups} groups");
        foreach (var (name, affine) in new[] { ("gamma", gamma), ("beta", beta) })
            if (affine is { } t && (t.DType != DType.F32 || t.ElementCount != channels || !t.IsContiguous))
                throw new ArgumentException($"{op}: {name} {t} must be a contiguous f32 tensor of {channels} elements");
        string kernel = x.DType switch
        {
            DType.F32 => "group_norm_f32",
            DType.F16 => "group_norm_f16",
            DType.BF16 => "group_norm_bf16",
            _ => throw new ArgumentException($"{op}: x {x} has dtype {x.DType}; supported: F32, F16, BF16"),
        };
        long spatial = x.ElementCount / Math.Max(1L * batch * channels, 1);
        int channelsPerGroup = channels / groups;
        if (1L * channelsPerGroup * spatial > int.MaxValue || batch > 65535)
            throw new ArgumentException($"{op}: x {x} is too large: a group holds at most 2^31-1 elements, a batch 65535 items");
        uint sharedBytes = (uint)(2 * channelsPerGroup * sizeof(float));
        if (sharedBytes > DefaultSharedLimit)
            throw new ArgumentException($"{op}: {channelsPerGroup} channels per group need {sharedBytes} bytes of shared memory, over {DefaultSharedLimit}");
        if (x.ElementCount == 0) return;

        int threads = (int)Math.Min(MaxBlockThreads, (channelsPerGroup * spatial + 31) / 32 * 32);
        launcher.Launch(kernel, (groups, batch), threads, sharedBytes,
            x, gamma is { } g ? g : LaunchArg.NullPointer, beta is { } b ? b : LaunchArg.NullPointer, y,
            channels, groups, (int)spatial, eps, fuseSilu ? 1 : 0);
    }
}
