using MeLFusion.Native.Interop.Cuda;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Interop;

public class CudaDriverTests(ITestOutputHelper output)
{
    [Fact]
    public void InitialisesOrExplainsWhyNot()
    {
        if (CudaDriver.IsAvailable)
        {
            CudaDriver.EnsureInitialized();
            CudaDriver.Check(CudaDriver.cuDeviceGetCount(out int count), "cuDeviceGetCount");
            output.WriteLine($"CUDA driver present, {count} device(s)");
            Assert.True(count >= 0);
        }
        else
        {
            output.WriteLine("no CUDA driver on this machine: checking the error a user sees");
            var e = Assert.Throws<CudaUnavailableException>(CudaDriver.EnsureInitialized);
            Assert.Contains("libcuda.so.1", e.Message);
            Assert.Contains("--device cpu", e.Message);
        }
    }
}
