using MeLFusion.Native.Backends.Cpu;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.Runtime;

public class MemoryPlannerTests
{
    /// <summary>A shape-only op for planning tests: output dims are given; optionally in place on input 0.</summary>
    private sealed class ShapeOp(string name, int[] dims, bool inPlace = false, long workspace = 0) : Op<ShapeOp>
    {
        public override string Name => name;
        public override int InPlaceInput => inPlace ? 0 : -1;
        public override TensorDesc InferOutput(ReadOnlySpan<TensorDesc> inputs) => new(DType.F32, new TensorShape(dims));
        public override long WorkspaceBytes(ReadOnlySpan<TensorDesc> inputs, TensorDesc output) => workspace;
    }

    private static Value Conv(GraphBuilder g, Value x, int c, int h, int w) => g.Apply(new ShapeOp("conv", [1, c, h, w], workspace: 9L * x.Shape.ElementCount * 4), x);
    private static Value Norm(GraphBuilder g, Value x) => g.Apply(new ShapeOp("group_norm", x.Shape.Dims.ToArray()), x);
    private static Value Silu(GraphBuilder g, Value x) => g.Apply(new ShapeOp("silu", x.Shape.Dims.ToArray(), inPlace: true), x);
    private static Value Add(GraphBuilder g, Value a, Value b) => g.Apply(new ShapeOp("add", a.Shape.Dims.ToArray(), inPlace: true), a, b);

    private static Value Resnet(GraphBuilder g, Value x, int c)
    {
        int h = x.Shape[2], w = x.Shape[3];
        var y = Conv(g, Silu(g, Norm(g, x)), c, h, w);
        y = Conv(g, Silu(g, Norm(g, y)), c, h, w);
        var skip = x.Shape[1] == c ? x : Conv(g, x, c, h, w);
        return Add(g, y, skip);
    }

    /// <summary>A UNet-shaped graph: 4 levels down with skips kept alive, a middle, 4 levels up consuming the skips.</summary>
    private static GraphBuilder UNetShapedGraph()
    {
        var g = new GraphBuilder();
        var x = g.Input("latent", DType.F32, 1, 8, 256, 16);
        int[] channels = [320, 640, 1280, 1280];
        var h = Conv(g, x, channels[0], 256, 16);
        var skips = new Stack<Value>();
        skips.Push(h);
        for (int level = 0; level < channels.Length; level++)
        {
            for (int i = 0; i < 2; i++)
            {
                h = Resnet(g, h, channels[level]);
                skips.Push(h);
            }
            if (level < channels.Length - 1)
            {
                h = Conv(g, h, channels[level], h.Shape[2] / 2, h.Shape[3] / 2);
                skips.Push(h);
            }
        }
        h = Resnet(g, Resnet(g, h, 1280), 1280);
        for (int level = channels.Length - 1; level >= 0; level--)
        {
            for (int i = 0; i < 3; i++)
            {
                var skip = skips.Pop();
                var cat = g.Apply(new ShapeOp("concat", [1, h.Shape[1] + skip.Shape[1], h.Shape[2], h.Shape[3]]), h, skip);
                h = Resnet(g, cat, channels[level]);
            }
            if (level > 0)
                h = Conv(g, g.Apply(new ShapeOp("upsample", [1, h.Shape[1], h.Shape[2] * 2, h.Shape[3] * 2]), h), channels[level], h.Shape[2] * 2, h.Shape[3] * 2);
        }
        g.Output("noise", Conv(g, Silu(g, Norm(g, h)), 8, 256, 16));
        return g;
    }

    [Fact]
    public void UNetArenaIsFarBelowTheSumOfIntermediates()
    {
        var g = UNetShapedGraph();
        var plan = MemoryPlanner.Plan(g);
        Assert.True(plan.ArenaBytes >= plan.PeakLiveBytes, plan.ToString());
        Assert.True(plan.ArenaBytes * 4 < plan.UnsharedBytes, $"arena not well below the unshared sum: {plan}");
        Assert.True(plan.ArenaBytes < plan.PeakLiveBytes * 1.5, $"greedy placement far from the live peak: {plan}");
    }

    [Fact]
    public void NoValueIsOverwrittenWhileStillNeeded()
    {
        var g = UNetShapedGraph();
        AssertPlanIsSafe(g, MemoryPlanner.Plan(g));
    }

    [Fact]
    public void InPlaceOpsReuseTheirInputWhenItDies()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 4, 64);
        var a = g.Apply(new ShapeOp("norm", [4, 64]), x);
        var b = g.Apply(new ShapeOp("silu", [4, 64], inPlace: true), a);
        var c = g.Apply(new ShapeOp("silu", [4, 64], inPlace: true), b);
        var kept = g.Apply(new ShapeOp("norm", [4, 64]), c);
        var d = g.Apply(new ShapeOp("silu", [4, 64], inPlace: true), c); // c is still needed by nobody after this... but is read by 'kept' earlier
        var e = g.Apply(new ShapeOp("add", [4, 64], inPlace: true), kept, d);
        g.Output("y", e);
        var plan = MemoryPlanner.Plan(g);
        var offsets = plan.ValueByteOffsets;
        Assert.Equal(offsets[a.Id], offsets[b.Id]);
        Assert.Equal(offsets[b.Id], offsets[c.Id]);
        Assert.Equal(offsets[c.Id], offsets[d.Id]);
        Assert.NotEqual(offsets[kept.Id], offsets[c.Id]);
        AssertPlanIsSafe(g, plan);
    }

    [Fact]
    public void InPlaceIsRefusedWhenTheInputIsStillNeeded()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 8);
        var a = g.Apply(new ShapeOp("norm", [8]), x);
        var b = g.Apply(new ShapeOp("silu", [8], inPlace: true), a);
        var c = g.Apply(new ShapeOp("add", [8]), a, b);
        var inPlaceOnInput = g.Apply(new ShapeOp("silu", [8], inPlace: true), x);
        g.Output("c", c);
        g.Output("d", inPlaceOnInput);
        var plan = MemoryPlanner.Plan(g);
        Assert.NotEqual(plan.ValueByteOffsets[a.Id], plan.ValueByteOffsets[b.Id]);
        Assert.NotEqual(plan.ValueByteOffsets[x.Id], plan.ValueByteOffsets[inPlaceOnInput.Id]);
        AssertPlanIsSafe(g, plan);
    }

    [Fact]
    public void ViewsKeepTheirBaseAlive()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 3, 4);
        var a = g.Apply(new ShapeOp("norm", [2, 3, 4]), x);
        var view = g.Permute(a, 2, 0, 1);
        var filler = g.Apply(new ShapeOp("norm", [2, 3, 4]), x);
        var copy = g.Contiguous(view);
        g.Output("y", g.Apply(new ShapeOp("add", [4, 2, 3]), copy, filler));
        var plan = MemoryPlanner.Plan(g);
        Assert.NotEqual(plan.ValueByteOffsets[a.Id], plan.ValueByteOffsets[filler.Id]);
        AssertPlanIsSafe(g, plan);
    }

    [Fact]
    public void ReplayingAPlanGivesFreshResultsEachRun()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 2, 3, 4);
        var t = g.Contiguous(g.Permute(x, 2, 0, 1));
        var back = g.Contiguous(g.Permute(g.Slice(t, 0, 1, 2), 1, 2, 0));
        g.Output("y", back);
        using var backend = new CpuBackend();
        using var plan = g.Compile(backend);
        for (int run = 0; run < 3; run++)
        {
            var data = Enumerable.Range(0, 24).Select(i => (float)(i * (run + 1))).ToArray();
            plan.SetInput<float>("x", data);
            plan.Run();
            var y = plan.ReadOutput<float>("y");
            // y[a, b, c'] = x[a, b, 1 + c'] for c' in [0, 2)
            var expected = new List<float>();
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 3; b++)
                    for (int c = 1; c < 3; c++) expected.Add(data[a * 12 + b * 4 + c]);
            Assert.Equal(expected, y);
        }
    }

    [Fact]
    public void CancellationStopsARunBetweenNodes()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 4);
        g.Output("y", g.Contiguous(g.Permute(g.Reshape(x, 2, 2), 1, 0)));
        using var backend = new CpuBackend();
        using var plan = g.Compile(backend);
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.Throws<OperationCanceledException>(() => plan.Run(cts.Token));
    }

    [Fact]
    public void WorkspacesAreSizedForTheBackendThatRunsThem()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 1, 32, 16, 16);
        g.Output("y", g.Conv2d(x, g.Input("w", DType.F32, 32, 32, 3, 3), padding: 1));
        var conv = g.Nodes.Single(n => n.Op.Name == "conv2d").Index;
        using var cpu = new CpuBackend();
        using var emulated = new MeLFusion.Native.Backends.CudaEmulated.CudaEmulatedBackend();
        Assert.True(MemoryPlanner.Plan(g, cpu).WorkspaceBytes[conv] > 0); // Winograd transforms
        Assert.Equal(0, MemoryPlanner.Plan(g, emulated).WorkspaceBytes[conv]); // implicit GEMM needs none
    }

    [Fact]
    public void BackendWithoutAKernelIsNamedAtCompileTime()
    {
        var g = new GraphBuilder();
        var x = g.Input("x", DType.F32, 4);
        g.Output("y", g.Apply(new ShapeOp("mystery", [4]), x));
        using var backend = new CpuBackend();
        var e = Assert.Throws<NotSupportedException>(() => g.Compile(backend));
        Assert.Contains("'mystery'", e.Message);
        Assert.Contains("'cpu'", e.Message);
    }

    /// <summary>
    /// Checks the plan by simulating a run: when a node writes its output, no other value that is read later (or
    /// pinned) may share bytes with it, except the input it legally overwrites in place.
    /// </summary>
    private static void AssertPlanIsSafe(GraphBuilder g, MemoryPlan plan)
    {
        var lastUse = new Dictionary<Value, int>();
        foreach (var node in g.Nodes)
            foreach (var input in node.Inputs)
                lastUse[input.Root] = node.Index;
        var pinned = g.Inputs.Values.Concat(g.Outputs.Values).ToHashSet();
        (long Start, long End) Range(Value v)
        {
            long start = plan.ValueByteOffsets[v.Id];
            return (start, start + v.Desc.ByteCount);
        }
        var stored = g.Values.Where(v => v.Kind is ValueKind.Input or ValueKind.Intermediate).ToList();
        foreach (var node in g.Nodes)
        {
            var output = node.Output;
            var (os, oe) = Range(output);
            Value? overwritten = node.Op.InPlaceInput >= 0 ? node.Inputs[node.Op.InPlaceInput].Root : null;
            foreach (var v in stored)
            {
                if (v == output || v == overwritten) continue;
                bool defined = v.Kind == ValueKind.Input || v.Producer!.Index < node.Index;
                bool needed = pinned.Contains(v) || (lastUse.TryGetValue(v, out int last) && last >= node.Index);
                if (!defined || !needed) continue;
                var (vs, ve) = Range(v);
                Assert.False(os < ve && vs < oe, $"node {node} overwrites {v}, which is still needed");
            }
            long ws = plan.WorkspaceByteOffsets[node.Index];
            if (ws >= 0)
            {
                long we = ws + plan.WorkspaceBytes[node.Index];
                foreach (var v in node.Inputs.Select(i => i.Root).Append(output).Where(v => v.Kind != ValueKind.Constant))
                {
                    var (vs, ve) = Range(v);
                    Assert.False(ws < ve && vs < we, $"workspace of {node} overlaps {v}");
                }
            }
        }
    }
}
