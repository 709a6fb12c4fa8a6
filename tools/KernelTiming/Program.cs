// Times every CUDA kernel family on the GPU at model-sized shapes and prints the achieved DRAM bandwidth (or f32 rate
// for GEMMs) as a fraction of the device's peak. Each case is a one-op graph captured as a CUDA graph and replayed back
// to back between two events, so launch overhead and host gaps stay out. Bytes are the minimum an op must move (each
// input read once, the output written once); GEMM FLOPs are 2·M·N·K.
//   dotnet run --project tools/KernelTiming -c Release [-- replays]
using System.Globalization;
using MeLFusion.Native.Backends.Cuda;
using MeLFusion.Native.Ops;
using MeLFusion.Native.Runtime;

int replays = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 50;

// name, graph, work: bytes moved (memory-bound ops) or FLOPs (GEMMs)
var cases = new List<(string Name, Func<GraphBuilder, Value> Build, double Work, bool Flops)>
{
    ("add [2,320,64,64]", g => g.Add(g.Input("a", DType.F32, 2, 320, 64, 64), g.Input("b", DType.F32, 2, 320, 64, 64)), F32(3, 2, 320, 64, 64), false),
    ("add bias [2,320,64,64]+[320,1,1]", g => g.Add(g.Input("a", DType.F32, 2, 320, 64, 64), g.Input("b", DType.F32, 320, 1, 1)), F32(2, 2, 320, 64, 64), false),
    ("scale [2,320,64,64]", g => g.Scale(g.Input("x", DType.F32, 2, 320, 64, 64), 0.5f), F32(2, 2, 320, 64, 64), false),
    ("gelu [2,4096,1280]", g => g.Gelu(g.Input("x", DType.F32, 2, 4096, 1280)), F32(2, 2, 4096, 1280), false),
    ("silu [2,1280,32,32]", g => g.Silu(g.Input("x", DType.F32, 2, 1280, 32, 32)), F32(2, 2, 1280, 32, 32), false),
    ("geglu [2,4096,2560]", g => g.Geglu(g.Input("x", DType.F32, 2, 4096, 2560)), F32(1.5, 2, 4096, 2560), false),
    ("softmax [16,4096,77]", g => g.Softmax(g.Input("x", DType.F32, 16, 4096, 77)), F32(2, 16, 4096, 77), false),
    ("softmax [16,1024,1024]", g => g.Softmax(g.Input("x", DType.F32, 16, 1024, 1024)), F32(2, 16, 1024, 1024), false),
    ("layer_norm [2,4096,320]", g => g.LayerNorm(g.Input("x", DType.F32, 2, 4096, 320), g.Input("w", DType.F32, 320), g.Input("b", DType.F32, 320)), F32(2, 2, 4096, 320), false),
    ("rms_norm [8,512,1024]", g => g.RmsNorm(g.Input("x", DType.F32, 8, 512, 1024), g.Input("w", DType.F32, 1024)), F32(2, 8, 512, 1024), false),
    ("group_norm+silu [2,320,64,64] g32", g => g.GroupNorm(g.Input("x", DType.F32, 2, 320, 64, 64), g.Input("w", DType.F32, 320), g.Input("b", DType.F32, 320), 32, 1e-6f, silu: true), F32(2, 2, 320, 64, 64), false),
    ("copy permute [2,4096,320]->[2,320,4096]", g => g.Permute(g.Input("x", DType.F32, 2, 4096, 320), 0, 2, 1), F32(2, 2, 4096, 320), false),
    ("concat [2,640,32,32]+[2,320,32,32]", g => g.Concat(1, g.Input("a", DType.F32, 2, 640, 32, 32), g.Input("b", DType.F32, 2, 320, 32, 32)), F32(2, 2, 960, 32, 32), false),
    ("upsample2x [2,640,32,32]", g => g.UpsampleNearest2x(g.Input("x", DType.F32, 2, 640, 32, 32)), F32(5, 2, 640, 32, 32), false),
    ("pad2d [2,128,256,256] +1 right/bottom", g => g.Pad2d(g.Input("x", DType.F32, 2, 128, 256, 256), 0, 1, 0, 1), F32(2, 2, 128, 256, 256), false),
    ("embedding [2,77] of [49408,768]", g => g.Embedding(g.Input("ids", DType.I64, 2, 77), g.Input("t", DType.F32, 49408, 768)), F32(2, 2, 77, 768), false),
    ("adaptive_avg_pool2d [1,4096,320]->[1,77,1024]", g => g.AdaptiveAvgPool2d(g.Input("x", DType.F32, 1, 4096, 320), 77, 1024), F32(1, 4096, 320) + F32(1, 77, 1024), false),
    ("linear [8192,640]x[2560,640]ᵀ", g => g.Linear(g.Input("x", DType.F32, 8192, 640), g.Input("w", DType.F32, 2560, 640), g.Input("b", DType.F32, 2560)), 2.0 * 8192 * 2560 * 640, true),
    ("matmul [16,1024,64]x[16,64,1024]", g => g.MatMul(g.Input("a", DType.F32, 16, 1024, 64), g.Input("b", DType.F32, 16, 64, 1024)), 2.0 * 16 * 1024 * 1024 * 64, true),
};

foreach (bool cublas in new[] { true, false })
{
    using var backend = new CudaBackend(useCublas: cublas && MeLFusion.Native.Interop.Cuda.CuBlas.IsAvailable);
    var device = backend.Device;
    Console.WriteLine(cublas ? $"{device}\n" : "\nGEMMs on kernels/gemm.cu (cuBLAS off):");
    Console.WriteLine($"{"case",-48} {"time",10} {"achieved",16} {"of peak",8}");
    foreach (var (name, build, work, flops) in cases)
    {
        if (!cublas && !flops) continue;
        var g = new GraphBuilder();
        g.Output("out", build(g));
        using var plan = g.Compile(backend);
        var random = new Random(1);
        foreach (var (input, value) in g.Inputs)
        {
            if (value.DType == DType.I64)
                plan.SetInput<long>(input, Enumerable.Range(0, (int)value.Shape.ElementCount).Select(_ => (long)random.Next(49408)).ToArray());
            else
                plan.SetInput<float>(input, Enumerable.Range(0, (int)value.Shape.ElementCount).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray());
        }
        using var graph = backend.CaptureGraph(plan);
        graph.Time(3); // warm-up
        double seconds = graph.Time(replays) / 1e3;
        double rate = work / seconds;
        double peak = flops ? device.PeakF32FlopsPerSecond : device.PeakBytesPerSecond;
        string achieved = flops ? $"{rate / 1e12:F2} TFLOP/s" : $"{rate / 1e9:F0} GB/s";
        Console.WriteLine($"{name,-48} {seconds * 1e6,8:F1}us {achieved,16} {rate / peak,8:P0}");
    }
}

// Bytes of `tensors` f32 tensors of the given dims.
static double F32(double tensors, params int[] dims) => tensors * 4.0 * dims.Aggregate(1.0, (a, d) => a * d);
