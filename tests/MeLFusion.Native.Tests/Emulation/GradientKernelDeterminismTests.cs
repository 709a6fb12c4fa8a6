using MeLFusion.Native.Backends.CudaEmulated;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;
using MeLFusion.Native.Tests.Support;

namespace MeLFusion.Native.Tests.Emulation;

/// <summary>
/// The backward kernels with block-wide reductions (normalisation and softmax gradients, and the in-order sums of their
/// parameter partials), as <see cref="KernelDeterminismTests"/>: threads in index, reverse and random order, blocks on
/// 1 to 3 OS threads, results identical to the bit and close to the cpu backend. Shapes cross the block size (256), the
/// 32-row chunks and the channel loops.
/// </summary>
public class GradientKernelDeterminismTests
{
    public static TheoryData<string> Cases => new()
    {
        "group_norm_input_grad", "group_norm_param_grad", "layer_norm_input_grad", "layer_norm_param_grad",
        "rms_norm_input_grad", "rms_norm_weight_grad", "softmax_backward",
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void BitwiseIdenticalUnderEverySchedule(string name)
    {
        var (build, feeds) = Case(name);
        var inOrder = EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.InOrder, 19, 1);
        Assert.DoesNotContain(inOrder, float.IsNaN);
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Reverse, 19, 2));
        Assert.Equal(inOrder, EmulatedDevice.RunGraph(build, feeds, EmulatorSchedule.Random, 19, 3));
        Check.Close(OpRunner.Run("cpu", build, feeds), inOrder, 2e-5f, 1e-4f, name);
    }

    private static (Func<GraphBuilder, Value[], Value> Build, OpRunner.Feed[] Feeds) Case(string name)
    {
        var random = new Random(name.Length * 7907);
        OpRunner.Feed Feed(string input, params int[] shape) => OpRunner.Feed.Uniform(random, 2f, input, shape);
        var groupNorm = new GroupNormOp(groups: 4, 1e-5f, hasWeight: true, hasBias: true, silu: true);
        var layerNorm = new LayerNormOp(1e-5f, hasWeight: true, hasBias: true);
        var rmsNorm = new RmsNormOp(1e-6f);
        OpRunner.Feed[] groupFeeds = [Feed("x", 2, 8, 5, 9), Feed("w", 8), Feed("b", 8), Feed("dy", 2, 8, 5, 9)];
        OpRunner.Feed[] layerFeeds = [Feed("x", 70, 300), Feed("w", 300), Feed("b", 300), Feed("dy", 70, 300)];
        OpRunner.Feed[] rmsFeeds = [Feed("x", 70, 300), Feed("w", 300), Feed("dy", 70, 300)];
        return name switch
        {
            "group_norm_input_grad" => ((g, v) => g.Apply(new GroupNormInputGradientOp(groupNorm), v), groupFeeds),
            "group_norm_param_grad" => ((g, v) => g.Apply(new GroupNormParamGradientOp(groupNorm), v), groupFeeds),
            "layer_norm_input_grad" => ((g, v) => g.Apply(new LayerNormInputGradientOp(layerNorm), v), layerFeeds),
            "layer_norm_param_grad" => ((g, v) => g.Apply(new LayerNormParamGradientOp(layerNorm), v), layerFeeds),
            "rms_norm_input_grad" => ((g, v) => g.Apply(new RmsNormInputGradientOp(rmsNorm), v), rmsFeeds),
            "rms_norm_weight_grad" => ((g, v) => g.Apply(new RmsNormWeightGradientOp(rmsNorm), v), rmsFeeds),
            "softmax_backward" => ((g, v) => g.Apply(SoftmaxBackwardOp.Instance, g.Softmax(v[0]), v[1]), [Feed("x", 5, 300), Feed("dy", 5, 300)]),
            _ => throw new ArgumentException(name),
        };
    }
}
