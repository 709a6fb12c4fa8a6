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

    [Fact]
    public void EmulatorRegistersTheProductionKernels()
    {
        var kernels = ProductionKernels();
        output.WriteLine("registered: " + string.Join(", ", kernels));
        Assert.Contains("group_norm_f32", kernels);
        Assert.Contains("group_norm_f16", kernels);
        Assert.Contains("group_norm_bf16", kernels);
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
