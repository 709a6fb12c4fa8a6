using System.Reflection;
using System.Text.RegularExpressions;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace MeLFusion.Native.Benchmarks;

public static class Program
{
    /// <summary>
    /// BenchmarkDotNet's switcher over every suite. Where no GPU can run <see cref="CudaKernelBenchmarks"/>, that suite
    /// is left out with its reason printed whenever the arguments select it; when they select nothing else, nothing runs.
    /// </summary>
    public static int Main(string[] args)
    {
        var suites = typeof(Program).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false } && t.GetMethods().Any(m => m.IsDefined(typeof(BenchmarkAttribute))))
            .ToList();
        if (CudaKernelBenchmarks.UnavailableReason() is { } reason)
        {
            suites.Remove(typeof(CudaKernelBenchmarks));
            var filters = Filters(args);
            if (filters is null || Selects(filters, typeof(CudaKernelBenchmarks)))
                Console.Error.WriteLine($"CudaKernelBenchmarks skipped, no CUDA kernel timed: {reason}");
            if (filters is not null && !suites.Any(s => Selects(filters, s))) return 0;
        }
        BenchmarkSwitcher.FromTypes([.. suites]).Run(args);
        return 0;
    }

    /// <summary>The glob patterns after --filter, or null without one (BenchmarkDotNet then asks interactively).</summary>
    private static List<string>? Filters(string[] args)
    {
        int start = Array.IndexOf(args, "--filter");
        if (start < 0) return null;
        return [.. args.Skip(start + 1).TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal))];
    }

    /// <summary>Whether a pattern matches some benchmark's full name (namespace.type.method), as BenchmarkDotNet's --filter does.</summary>
    private static bool Selects(List<string> filters, Type suite) =>
        suite.GetMethods().Where(m => m.IsDefined(typeof(BenchmarkAttribute)))
            .Any(m => filters.Any(f => Regex.IsMatch($"{suite.FullName}.{m.Name}",
                "^" + Regex.Escape(f).Replace(@"\*", ".*").Replace(@"\?", ".") + "$", RegexOptions.IgnoreCase)));
}
