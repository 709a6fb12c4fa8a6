using MeLFusion.Native.Interop;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Backends.CudaKernels;

/// <summary>
/// Launch configuration of kernels/group_norm.cu, shared by the cuda and cuda-emulated backends: one block per
/// (group, batch item), statistics in f32, a deterministic two-pass reduction; the same for the gradients.
/// </summary>
public static class GroupNormKernel
{
    /// <summary>Threads per block for large groups; small groups get the next multiple of 32 of their size.</summary>
    public const int MaxBlockThreads = 256;

    /// <summary>Dynamic shared memory a kernel may use without opting in (cuFuncSetAttribute) on every GPU.</summary>
    public const int DefaultSharedLimit = 48 * 1024;

    private const string Op = "group_norm";

    /// <summary>
    /// y = group_norm(x) * gamma + beta, then SiLU when <paramref name="fuseSilu"/>. x and y are contiguous
    /// [N, C, spatial...] tensors of the same shape and dtype (f32, f16 or bf16); gamma and beta are f32 [C] or absent
    /// (1 and 0).
    /// </summary>
    public static void Launch(IKernelLauncher launcher, Tensor x, Tensor? gamma, Tensor? beta, Tensor y, int groups,
        float eps, bool fuseSilu)
    {
        RequireLike(Op, "y", y, x);
        string kernel = x.DType switch
        {
            DType.F32 => "group_norm_f32",
            DType.F16 => "group_norm_f16",
            DType.BF16 => "group_norm_bf16",
            _ => throw new ArgumentException($"{Op}: x {x} has dtype {x.DType}; supported: F32, F16, BF16"),
        };
        var layout = Layout.Of(Op, x, gamma, beta, groups);
        if (x.ElementCount == 0) return;
        launcher.Launch(kernel, (groups, layout.Batch), layout.Threads, layout.SharedBytes,
            x, Pointer(gamma), Pointer(beta), y, layout.Channels, groups, layout.Spatial, eps, fuseSilu ? 1 : 0);
    }

    /// <summary>
    /// dx of f32 group norm (with the SiLU fused when <paramref name="fuseSilu"/>) from x, gamma, beta and dy, all as in
    /// <see cref="Launch"/>; dx may be dy.
    /// </summary>
    public static void LaunchInputGradient(IKernelLauncher launcher, Tensor x, Tensor? gamma, Tensor? beta, Tensor dy,
        Tensor dx, int groups, float eps, bool fuseSilu)
    {
        const string op = Op + "_input_grad";
        RequireF32(op, x);
        RequireLike(op, "dy", dy, x);
        RequireLike(op, "dx", dx, x);
        var layout = Layout.Of(op, x, gamma, beta, groups);
        if (x.ElementCount == 0) return;
        launcher.Launch("group_norm_backward_input_f32", (groups, layout.Batch), layout.Threads, layout.SharedBytes,
            x, Pointer(gamma), Pointer(beta), dy, dx, layout.Channels, groups, layout.Spatial, eps, fuseSilu ? 1 : 0);
    }

    /// <summary>
    /// The per-batch-item terms of f32 group norm's parameter gradients into <paramref name="partials"/> [N, 2, C]:
    /// Σ dz·x̂ and Σ dz over each channel's positions. The caller adds them over the batch.
    /// </summary>
    public static void LaunchParameterPartials(IKernelLauncher launcher, Tensor x, Tensor? gamma, Tensor? beta, Tensor dy,
        Tensor partials, int groups, float eps, bool fuseSilu)
    {
        const string op = Op + "_param_grad";
        RequireF32(op, x);
        RequireLike(op, "dy", dy, x);
        var layout = Layout.Of(op, x, gamma, beta, groups);
        if (partials.DType != DType.F32 || partials.ElementCount != 2L * layout.Batch * layout.Channels || !partials.IsContiguous)
            throw new ArgumentException($"{op}: partials {partials} must be a contiguous f32 [{layout.Batch}, 2, {layout.Channels}]");
        if (x.ElementCount == 0) return;
        launcher.Launch("group_norm_backward_params_f32", (groups, layout.Batch), layout.Threads, layout.SharedBytes,
            x, Pointer(gamma), Pointer(beta), dy, partials, layout.Channels, groups, layout.Spatial, eps, fuseSilu ? 1 : 0);
    }

    /// <summary>x's [N, C, spatial] layout and the launch shape every group_norm.cu kernel uses.</summary>
    private readonly record struct Layout(int Batch, int Channels, int Spatial, int Threads, uint SharedBytes)
    {
        public static Layout Of(string op, Tensor x, Tensor? gamma, Tensor? beta, int groups)
        {
            if (x.Rank < 2 || !x.IsContiguous)
                throw new ArgumentException($"{op}: x {x} must be a contiguous [N, C, ...] tensor");
            int batch = x.Dim(0), channels = x.Dim(1);
            if (groups <= 0 || channels % groups != 0)
                throw new ArgumentException($"{op}: {channels} channels of x {x} do not split into {groups} groups");
            foreach (var (name, affine) in new[] { ("gamma", gamma), ("beta", beta) })
                if (affine is { } t && (t.DType != DType.F32 || t.ElementCount != channels || !t.IsContiguous))
                    throw new ArgumentException($"{op}: {name} {t} must be a contiguous f32 tensor of {channels} elements");
            long spatial = x.ElementCount / Math.Max(1L * batch * channels, 1);
            int channelsPerGroup = channels / groups;
            if (1L * channelsPerGroup * spatial > int.MaxValue || batch > 65535)
                throw new ArgumentException($"{op}: x {x} is too large: a group holds at most 2^31-1 elements, a batch 65535 items");
            uint sharedBytes = (uint)(2 * channelsPerGroup * sizeof(float));
            if (sharedBytes > DefaultSharedLimit)
                throw new ArgumentException($"{op}: {channelsPerGroup} channels per group need {sharedBytes} bytes of shared memory, over {DefaultSharedLimit}");
            int threads = (int)Math.Min(MaxBlockThreads, (channelsPerGroup * spatial + 31) / 32 * 32);
            return new Layout(batch, channels, (int)spatial, Math.Max(32, threads), sharedBytes);
        }
    }

    private static LaunchArg Pointer(Tensor? tensor) => tensor is { } t ? t : LaunchArg.NullPointer;

    private static void RequireLike(string op, string name, Tensor t, Tensor x)
    {
        if (t.DType != x.DType || !t.Shape.SameDims(x.Shape) || !t.IsContiguous)
            throw new ArgumentException($"{op}: {name} {t} must be a contiguous tensor like x {x}");
    }

    private static void RequireF32(string op, Tensor x)
    {
        if (x.DType != DType.F32) throw new ArgumentException($"{op}: x {x} has dtype {x.DType}; supported: F32");
    }
}
