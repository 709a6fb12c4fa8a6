using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using MeLFusion.Native.Backends.Cuda;
using MeLFusion.Native.Interop.Cuda;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// The project's CUDA kernels on the <c>cuda</c> backend at the model's shapes, each reported as achieved throughput
/// and as a fraction of the device's peak (the "Achieved" and "Of peak" columns, see <see cref="DeviceWorkAttribute"/>).
/// Every op is a one-op plan captured as a CUDA graph; one invocation replays it <see cref="Replays"/> times back to
/// back and waits once, so launch and synchronisation overhead stay out of the per-replay time BenchmarkDotNet reports.
/// <para>
/// Without a usable GPU (no driver, no device, an unsupported one, or no kernel fatbins) <see cref="Program"/> prints
/// <see cref="UnavailableReason"/> and runs none of these: no number is ever reported for a GPU that is not there.
/// </para>
/// </summary>
[Config(typeof(CudaKernelBenchmarkConfig))]
public class CudaKernelBenchmarks
{
    /// <summary>Graph replays per invocation.</summary>
    public const int Replays = 20;

    // UNet self-attention at its largest: classifier-free guidance batch 2, 5 heads of dim 64 over 4096 latent tokens.
    private const int AttentionBatch = 2, Tokens = 4096, Heads = 5, HeadDim = 64;
    private const double AttentionFlops = 4.0 * AttentionBatch * Heads * Tokens * Tokens * HeadDim; // Q·Kᵀ and P·V

    // A resnet block's group norm + SiLU and a residual add at 64×64 latents, 320 channels, batch 2.
    private const int Channels = 320, Side = 64;
    private const double ActivationBytes = 4.0 * AttentionBatch * Channels * Side * Side;

    // The vocoder's first upsampler: 1024 -> 512 channels, kernel 16, stride 5 over 1024 frames.
    private const int VocoderIn = 1024, VocoderOut = 512, VocoderKernel = 16, VocoderStride = 5, Frames = 1024;
    private const double ConvTransposeFlops = 2.0 * VocoderIn * VocoderOut * VocoderKernel * Frames;

    private readonly List<IDisposable> _resources = [];
    private readonly Random _random = new(42);
    private CudaBackend _backend = null!;
    private CudaGraph _attentionF32 = null!, _attentionBF16 = null!, _groupNormSilu = null!, _add = null!, _convTranspose = null!;

    /// <summary>Why the suite cannot run here, or null when a GPU, its driver and the kernel fatbins are all present.</summary>
    public static string? UnavailableReason()
    {
        try
        {
            using var backend = new CudaBackend();
            return null;
        }
        catch (CudaUnavailableException e)
        {
            return e.Message;
        }
        catch (FileNotFoundException e)
        {
            return e.Message;
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CudaBackend();
        _attentionF32 = Capture(g => Attention(g, DType.F32));
        _attentionBF16 = Capture(g => Attention(g, DType.BF16));
        _groupNormSilu = Capture(g => g.GroupNorm(g.Input("x", DType.F32, AttentionBatch, Channels, Side, Side),
            g.Input("w", DType.F32, Channels), g.Input("b", DType.F32, Channels), groups: 32, eps: 1e-5f, silu: true));
        _add = Capture(g => g.Add(g.Input("a", DType.F32, AttentionBatch, Channels, Side, Side),
            g.Input("b", DType.F32, AttentionBatch, Channels, Side, Side)));
        _convTranspose = Capture(g => g.ConvTranspose1d(g.Input("x", DType.F32, 1, VocoderIn, Frames),
            g.Input("w", DType.F32, VocoderIn, VocoderOut, VocoderKernel), g.Input("b", DType.F32, VocoderOut),
            stride: VocoderStride, padding: (VocoderKernel - VocoderStride) / 2), scale: 0.1f);
    }

    [Benchmark(OperationsPerInvoke = Replays), DeviceWork(AttentionFlops, DevicePeak.F32)]
    public void AttentionF32() => _attentionF32.Time(Replays);

    [Benchmark(OperationsPerInvoke = Replays), DeviceWork(AttentionFlops, DevicePeak.TensorCore)]
    public void AttentionBF16() => _attentionBF16.Time(Replays);

    [Benchmark(OperationsPerInvoke = Replays), DeviceWork(2 * ActivationBytes, DevicePeak.Memory)]
    public void GroupNormSilu() => _groupNormSilu.Time(Replays);

    [Benchmark(OperationsPerInvoke = Replays), DeviceWork(3 * ActivationBytes, DevicePeak.Memory)]
    public void Add() => _add.Time(Replays);

    [Benchmark(OperationsPerInvoke = Replays), DeviceWork(ConvTransposeFlops, DevicePeak.F32)]
    public void ConvTranspose1d() => _convTranspose.Time(Replays);

    [GlobalCleanup]
    public void Cleanup()
    {
        for (int i = _resources.Count - 1; i >= 0; i--) _resources[i].Dispose();
        _resources.Clear();
        _backend.Dispose();
    }

    private static Value Attention(GraphBuilder g, DType dtype) => g.Attention(
        g.Input("q", dtype, AttentionBatch, Tokens, Heads * HeadDim), g.Input("k", dtype, AttentionBatch, Tokens, Heads * HeadDim),
        g.Input("v", dtype, AttentionBatch, Tokens, Heads * HeadDim), Heads);

    /// <summary>Compiles the one-op graph, fills its inputs with uniform values in ±<paramref name="scale"/> and captures it.</summary>
    private CudaGraph Capture(Func<GraphBuilder, Value> build, float scale = 1f)
    {
        var g = new GraphBuilder();
        g.Output("out", build(g));
        var plan = g.Compile(_backend);
        _resources.Add(plan);
        foreach (var (name, input) in g.Inputs)
        {
            var values = new float[input.Shape.ElementCount];
            for (int i = 0; i < values.Length; i++) values[i] = (_random.NextSingle() * 2 - 1) * scale;
            var bytes = new byte[values.Length * input.DType.Size()];
            FloatConversions.FromSingle(values, input.DType, bytes);
            plan.SetInput<byte>(name, bytes);
        }
        plan.Run(); // kernels looked up and granted their shared memory before the capture
        var graph = _backend.CaptureGraph(plan);
        _resources.Add(graph);
        graph.Time(3); // warm-up: modules loaded, memory touched
        return graph;
    }
}

/// <summary>The device rate a <see cref="DeviceWorkAttribute"/> is measured against.</summary>
public enum DevicePeak
{
    /// <summary>DRAM bandwidth (<see cref="CudaDevice.PeakBytesPerSecond"/>); the work is bytes.</summary>
    Memory,

    /// <summary>f32 FMA units, no tensor cores (<see cref="CudaDevice.PeakF32FlopsPerSecond"/>); the work is FLOPs.</summary>
    F32,

    /// <summary>Dense f16/bf16 tensor cores with f32 accumulation (<see cref="CudaDevice.PeakTensorFlopsPerSecond"/>); FLOPs.</summary>
    TensorCore,
}

/// <summary>
/// The work one operation of a benchmark does: the minimum bytes a memory-bound op must move (each input read once, the
/// output written once) or the FLOPs of a compute-bound one (2 per multiply-add), and the peak it is compared with.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class DeviceWorkAttribute(double amount, DevicePeak peak) : Attribute
{
    public double Amount { get; } = amount;
    public DevicePeak Peak { get; } = peak;
}

/// <summary>2 warm-ups and 5 iterations like the CPU suites, plus the achieved-rate and fraction-of-peak columns.</summary>
public sealed class CudaKernelBenchmarkConfig : ManualConfig
{
    public CudaKernelBenchmarkConfig()
    {
        AddJob(Job.Default.WithWarmupCount(2).WithIterationCount(5));
        AddColumn(new DeviceRateColumn(fractionOfPeak: false), new DeviceRateColumn(fractionOfPeak: true));
    }
}

/// <summary>
/// "Achieved" (GB/s or TFLOP/s from the mean time of one operation) or "Of peak" (that rate over the device's peak for
/// the method's <see cref="DeviceWorkAttribute"/>), from the device the summary was measured on.
/// </summary>
public sealed class DeviceRateColumn(bool fractionOfPeak) : IColumn
{
    private static readonly Lazy<CudaDevice> Device = new(() =>
    {
        CudaDriver.EnsureInitialized();
        return CudaDevice.Query(0);
    });

    public string Id => nameof(DeviceRateColumn) + (fractionOfPeak ? ".OfPeak" : ".Achieved");
    public string ColumnName => fractionOfPeak ? "Of peak" : "Achieved";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => fractionOfPeak ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => fractionOfPeak
        ? "Achieved rate over the device's peak: DRAM bandwidth, f32 FMA rate or dense f16/bf16 tensor-core rate"
        : "Bytes moved (memory-bound ops) or FLOPs (compute-bound ops) of one operation over its mean time";

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var work = benchmarkCase.Descriptor.WorkloadMethod.GetCustomAttribute<DeviceWorkAttribute>();
        double? nanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (work is null || nanoseconds is not > 0) return "-";
        double rate = work.Amount / (nanoseconds.Value * 1e-9);
        if (!fractionOfPeak)
            return work.Peak == DevicePeak.Memory ? $"{rate / 1e9:F0} GB/s" : $"{rate / 1e12:F2} TFLOP/s";
        var device = Device.Value;
        double peak = work.Peak switch
        {
            DevicePeak.Memory => device.PeakBytesPerSecond,
            DevicePeak.F32 => device.PeakF32FlopsPerSecond,
            _ => device.PeakTensorFlopsPerSecond,
        };
        return $"{rate / peak:P1}";
    }

    public override string ToString() => ColumnName;
}
