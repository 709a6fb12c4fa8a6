using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// The AudioLDM front end on 10.24 s of 16 kHz audio (163840 samples -> 1025 frames): |STFT| alone (compare with
/// torch.stft(...).abs()) and the whole log-mel chain.
/// </summary>
[SimpleJob(warmupCount: 2, iterationCount: 5)]
public class StftBenchmark
{
    private const int Samples = 163840;
    private CpuBackend _backend = null!;
    private ExecutionPlan _stft = null!;
    private ExecutionPlan _logMel = null!;

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var random = new Random(7);
        var wave = new float[Samples];
        for (int i = 0; i < wave.Length; i++) wave[i] = (float)(random.NextDouble() - 0.5);

        var g = new GraphBuilder();
        g.Output("magnitude", g.StftMagnitude(g.Input("wave", DType.F32, 1, Samples), 1024, 160, 1024));
        _stft = g.Compile(_backend);
        _stft.SetInput<float>("wave", wave);

        var chain = new GraphBuilder();
        var magnitude = chain.StftMagnitude(chain.Input("wave", DType.F32, 1, Samples), 1024, 160, 1024);
        var filterbank = chain.Input("filterbank", DType.F32, 64, 513);
        chain.Output("log_mel", chain.LogClamp(chain.MelSpectrogram(magnitude, filterbank)));
        _logMel = chain.Compile(_backend);
        _logMel.SetInput<float>("wave", wave);
        _logMel.SetInput<float>("filterbank", MelFilterbank.Slaney(16000, 1024, 64, 0, 8000));
    }

    [Benchmark]
    public void Stft1024() => _stft.Run();

    [Benchmark]
    public void LogMel64() => _logMel.Run();

    [GlobalCleanup]
    public void Cleanup()
    {
        _stft.Dispose();
        _logMel.Dispose();
        _backend.Dispose();
    }
}
