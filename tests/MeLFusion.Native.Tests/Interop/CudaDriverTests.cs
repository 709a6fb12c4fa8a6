using MeLFusion.Native.Interop.Cuda;
using Xunit.Abstractions;

namespace MeLFusion.Native.Tests.Interop;

public class CudaDriverTests(ITestOutputHelper output)
{
    [Fact]
    public void InitialisesOrExplainsWhyNot()
    {
        try
        {
            CudaDriver.EnsureInitialized();
        }
        catch (CudaUnavailableException e)
        {
            output.WriteLine($"no usable GPU here, checking the error a user sees: {e.Message}");
            Assert.Contains("--device cpu", e.Message);
            if (!CudaDriver.IsAvailable) Assert.Contains("libcuda.so.1", e.Message);
            return;
        }
        CudaDriver.Check(CudaDriver.cuDeviceGetCount(out int count), "cuDeviceGetCount");
        output.WriteLine($"CUDA driver present, {count} device(s)");
        Assert.True(count > 0);
    }
}
