using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// The AudioLDM front end on 10.24 s of 16 kHz audio (163840 samples -> 1025 frames): |STFT| alone (compare with
/// torch.stft(...).abs()) and the whole log-mel chain.
/// </summary>
public class StftBenchmark : PlanBenchmark
{
    private const int Samples = 163840;
    private ExecutionPlan _stft = null!, _logMel = null!;

    [GlobalSetup]
    public void Setup()
    {
        _stft = Compile(g => g.Output("magnitude", g.StftMagnitude(g.Input("wave", DType.F32, 1, Samples), 1024, 160, 1024)), scale: 0.5f);
        _logMel = Compile(g =>
        {
            var magnitude = g.StftMagnitude(g.Input("wave", DType.F32, 1, Samples), 1024, 160, 1024);
            g.Output("log_mel", g.LogClamp(g.MelSpectrogram(magnitude, g.Input("filterbank", DType.F32, 64, 513))));
        }, scale: 0.5f);
        _logMel.SetInput<float>("filterbank", MelFilterbank.Slaney(16000, 1024, 64, 0, 8000));
    }

    [Benchmark]
    public void Stft1024() => _stft.Run();

    [Benchmark]
    public void LogMel64() => _logMel.Run();
}
