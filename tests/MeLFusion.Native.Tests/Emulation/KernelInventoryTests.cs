using System.Diagnostics;
using System.Text.RegularExpressions;
using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Tests.Support;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The kernels of kernels/*.cu the emulator registers, and, where nvcc has built build/kernels/*.fatbin and cuobjdump is
/// installed, the same kernels in the fatbins with sm_80 and sm_90 code.
/// </summary>
public partial class KernelInventoryTests(ITestOutputHelper output)
{
    private static string[] ProductionKernels() =>
        [.. CudaEmulatedBackend.RegisteredKernels().Where(k => k.Module == "melfusion_emu").Select(k => k.Name).Order()];

    /// <summary>The kernels CudaKernelBackend launches by name, per kernels/*.cu family.</summary>
    private static readonly string[] LaunchedKernels =
    [
        "activation_f32", "geglu_f32", "activation_backward_f32", "geglu_backward_f32",      // activations.cu
        "adaptive_avg_pool_f32", "adaptive_avg_pool_backward_f32",                            // adaptive_avg_pool.cu
        "attention_f32", "attention_f16", "attention_bf16", "attention_query_gradient_f32",
        "attention_row_statistics_f32", "attention_key_value_gradient_f32",                   // attention.cu
        "concat_rows_b1", "concat_rows_b2", "concat_rows_b4", "concat_rows_b8", "concat_rows_b16", // concat.cu
        "conv1d_f32",                                                                         // conv1d.cu
        "conv2d_f32",                                                                         // conv2d.cu
        "conv_transpose1d_f32",                                                               // conv_transpose1d.cu
        "conv2d_input_grad_f32", "conv2d_weight_grad_f32", "conv1d_input_grad_f32", "conv1d_weight_grad_f32",
        "conv_slice_sum_f32",                                                                 // conv_grad.cu
        "copy_strided_b2", "copy_strided_b4", "copy_strided_b8",
        "copy_transpose_b2", "copy_transpose_b4", "copy_transpose_b8",                        // copy.cu
        "binary_f32", "scalar_f32", "clamp_backward_f32",                                     // elementwise.cu
        "embedding_check_i32", "embedding_check_i64", "embedding_gather_i32_b2", "embedding_gather_i32_b4",
        "embedding_gather_i64_b2", "embedding_gather_i64_b4", "embedding_backward_links_i32",
        "embedding_backward_links_i64", "embedding_backward_sum_i32", "embedding_backward_sum_i64", // embedding.cu
        "gemm_f32", "bias_add_f32",                                                           // gemm.cu
        "group_norm_f32", "group_norm_f16", "group_norm_bf16", "group_norm_backward_input_f32",
        "group_norm_backward_params_f32",                                                     // group_norm.cu
        "layer_norm_f32", "layer_norm_backward_input_f32", "layer_norm_backward_params_f32", // layer_norm.cu
        "adamw_step_f32", "ema_update_f32", "fill_f32", "sum_of_squares_blocks_f32", "sum_of_squares_final_f32", // optimizer.cu
        "pad2d_b2", "pad2d_b4", "pad2d_b8",                                                   // pad.cu
        "reduce_sum_f32",                                                                     // reduce.cu
        "rms_norm_f32", "rms_norm_backward_input_f32", "rms_norm_backward_weight_f32",       // rms_norm.cu
        "softmax_f32", "softmax_backward_f32",                                                // softmax.cu
        "stft_magnitude_f32", "stft_magnitude_backward_frames_f32", "stft_magnitude_backward_overlap_f32",
        "log_clamp_f32", "log_clamp_backward_f32",                                            // stft.cu
        "timestep_embedding_f32", "timestep_embedding_i32", "timestep_embedding_i64",         // timestep_embedding.cu
        "upsample_nearest2x_b2", "upsample_nearest2x_b4",                                     // upsample.cu
        "view_scatter_f32",                                                  // view_scatter.cu
    ];

    [Fact]
    public void EmulatorRegistersTheProductionKernels()
    {
        var kernels = ProductionKernels();
        output.WriteLine("registered: " + string.Join(", ", kernels));
        foreach (string kernel in LaunchedKernels) Assert.Contains(kernel, kernels);
        Assert.DoesNotContain(kernels, k => k.StartsWith("emu_", StringComparison.Ordinal)); // test kernels stay out
    }

    [Fact]
    public void FatbinsHoldSm80AndSm90CodeForEveryRegisteredKernel()
    {
        var directory = Path.Combine(Fixture.RepositoryRoot, "build", "kernels");
        var fatbins = Directory.Exists(directory) ? Directory.GetFiles(directory, "*.fatbin") : [];
        var cuobjdump = FindOnPath("cuobjdump");
        if (fatbins.Length == 0 || cuobjdump is null)
        {
            output.WriteLine(fatbins.Length == 0
                ? $"not checked: no fatbins in {directory} (nvcc was not available to the build)"
                : "not checked: cuobjdump is not on PATH");
            return;
        }

        var entries = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var fatbin in fatbins)
        {
            string elves = Run(cuobjdump, "--list-elf", fatbin);
            Assert.Contains(".sm_80.cubin", elves);
            Assert.Contains(".sm_90.cubin", elves);
            foreach (Match m in EntrySymbol().Matches(Run(cuobjdump, "--dump-elf-symbols", fatbin)))
                entries.Add(m.Groups[1].Value);
        }
        output.WriteLine($"{fatbins.Length} fatbins, entry points: {string.Join(", ", entries)}");
        // Both ways: a kernel missing MF_EXPORT_KERNEL is untested by the emulator; one missing from a fatbin cannot run.
        Assert.Equal(entries, ProductionKernels());
    }

    [GeneratedRegex(@"STO_ENTRY\s+(\S+)")]
    private static partial Regex EntrySymbol();

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program)).FirstOrDefault(File.Exists);

    private static string Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', args)} failed: {stderr}");
        return stdout.Result;
    }
}
