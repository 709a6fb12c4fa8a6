using System.Text;
using MeLFusion.Native.Interop.Cuda;

namespace MeLFusion.Native.Backends.Cuda;

/// <summary>A GPU as the driver describes it, with the peak rates kernels are measured against.</summary>
public sealed record CudaDevice(
    int Ordinal, string Name, int ComputeMajor, int ComputeMinor, int MultiprocessorCount, int ClockKhz,
    int MemoryClockKhz, int MemoryBusBits, long TotalMemoryBytes)
{
    /// <summary>Peak DRAM bandwidth in bytes per second: two transfers per memory clock over the whole bus.</summary>
    public double PeakBytesPerSecond => 2.0 * MemoryClockKhz * 1e3 * MemoryBusBits / 8;

    /// <summary>Peak f32 rate in FLOP/s without tensor cores: FMA units per SM × 2 FLOPs × SMs × clock.</summary>
    public double PeakF32FlopsPerSecond => 2.0 * Fp32LanesPerMultiprocessor * MultiprocessorCount * ClockKhz * 1e3;

    /// <summary>f32 FMA lanes per SM: 64 on sm_80 (A100), 128 on sm_86, sm_89 and sm_90.</summary>
    public int Fp32LanesPerMultiprocessor => (ComputeMajor, ComputeMinor) == (8, 0) ? 64 : 128;

    public override string ToString() =>
        $"{Name} (sm_{ComputeMajor}{ComputeMinor}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (1L << 30)} GiB, " +
        $"peak {PeakBytesPerSecond / 1e9:F0} GB/s and {PeakF32FlopsPerSecond / 1e12:F1} f32 TFLOP/s)";

    /// <summary>Queries device <paramref name="ordinal"/>; the driver must be initialised.</summary>
    internal static unsafe CudaDevice Query(int ordinal)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGet(out int device, ordinal), "cuDeviceGet");
        byte* name = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(name, 256, device), "cuDeviceGetName");
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem(out nuint total, device), "cuDeviceTotalMem");
        int Attribute(CudaDriver.DeviceAttribute attribute)
        {
            CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int value, attribute, device), $"cuDeviceGetAttribute({attribute})");
            return value;
        }
        var nameBytes = new ReadOnlySpan<byte>(name, 256);
        int nameLength = nameBytes.IndexOf((byte)0);
        return new CudaDevice(ordinal, Encoding.UTF8.GetString(nameLength < 0 ? nameBytes : nameBytes[..nameLength]),
            Attribute(CudaDriver.DeviceAttribute.ComputeCapabilityMajor), Attribute(CudaDriver.DeviceAttribute.ComputeCapabilityMinor),
            Attribute(CudaDriver.DeviceAttribute.MultiprocessorCount), Attribute(CudaDriver.DeviceAttribute.ClockRate),
            Attribute(CudaDriver.DeviceAttribute.MemoryClockRate), Attribute(CudaDriver.DeviceAttribute.GlobalMemoryBusWidth),
            (long)total);
    }
}
