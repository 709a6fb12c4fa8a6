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

    /// <summary>
    /// Peak dense tensor-core rate in FLOP/s for f16 or bf16 operands with f32 accumulation (what the attention_f16 and
    /// attention_bf16 kernels do): <see cref="TensorFlopsPerClockPerMultiprocessor"/> × SMs × clock.
    /// </summary>
    public double PeakTensorFlopsPerSecond => (double)TensorFlopsPerClockPerMultiprocessor * MultiprocessorCount * ClockKhz * 1e3;

    /// <summary>
    /// Dense f16/bf16 tensor FLOPs per clock per SM with f32 accumulation, at the full rate of the data-center parts:
    /// 2048 on sm_80 (A100: 312 TFLOP/s), 1024 on sm_86 and sm_89 (A10, A40, L4, L40S), 4096 on sm_90 (H100, H200).
    /// GeForce parts (and the L40) accumulate in f32 at half that rate, so their fraction of this peak reads as half.
    /// </summary>
    public int TensorFlopsPerClockPerMultiprocessor => ComputeMajor >= 9 ? 4096 : (ComputeMajor, ComputeMinor) == (8, 0) ? 2048 : 1024;

    public override string ToString() =>
        $"{Name} (sm_{ComputeMajor}{ComputeMinor}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (1L << 30)} GiB, " +
        $"peak {PeakBytesPerSecond / 1e9:F0} GB/s, {PeakF32FlopsPerSecond / 1e12:F1} f32 TFLOP/s and " +
        $"{PeakTensorFlopsPerSecond / 1e12:F0} f16/bf16 tensor TFLOP/s)";

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
