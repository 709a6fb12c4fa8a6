using BenchmarkDotNet.Attributes;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Benchmarks;

/// <summary>
/// Fused attention at the UNet's largest attention layers: 5 heads of dim 64 over 4096 latent tokens
/// (q [1, 4096, 320]), attending to themselves (k, v [1, 4096, 320]) or to 77 padded text tokens of which 20 are real
/// (k, v [1, 77, 320] with a key padding mask). PyTorch 1.13 reference, same box, torch.set_num_threads(2):
/// softmax(q·kᵀ·scale)·v per head.
/// </summary>
public class AttentionBenchmark : PlanBenchmark
{
    private const int Tokens = 4096, TextTokens = 77, RealTextTokens = 20, Heads = 5, HeadDim = 64;
    private const int Channels = Heads * HeadDim;

    private ExecutionPlan _selfAttention = null!, _crossAttention = null!;

    [GlobalSetup]
    public void Setup()
    {
        _selfAttention = Compile(g => g.Output("out", g.Attention(g.Input("q", DType.F32, 1, Tokens, Channels),
            g.Input("k", DType.F32, 1, Tokens, Channels), g.Input("v", DType.F32, 1, Tokens, Channels), Heads)));
        _crossAttention = Compile(g => g.Output("out", g.Attention(g.Input("q", DType.F32, 1, Tokens, Channels),
            g.Input("k", DType.F32, 1, TextTokens, Channels), g.Input("v", DType.F32, 1, TextTokens, Channels), Heads,
            keyPaddingMask: g.Input("mask", DType.I32, 1, TextTokens))));
        _crossAttention.SetInput<int>("mask", Enumerable.Range(0, TextTokens).Select(i => i < RealTextTokens ? 1 : 0).ToArray());
    }

    [Benchmark]
    public void SelfAttention4096() => _selfAttention.Run();

    [Benchmark]
    public void CrossAttention4096x77() => _crossAttention.Run();
}
