using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MeLFusion.Native.Runtime;

/// <summary>Conversions between f32 and the 16-bit float formats (IEEE half and bfloat16), round to nearest even.</summary>
public static class FloatConversions
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40); // keep NaN a quiet NaN
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>Decodes <paramref name="source"/> holding elements of <paramref name="dtype"/> into f32.</summary>
    public static void ToSingle(ReadOnlySpan<byte> source, DType dtype, Span<float> destination, string what)
    {
        long count = source.Length / dtype.Size();
        if (count != destination.Length || source.Length % dtype.Size() != 0)
            throw new ArgumentException($"{what}: {source.Length} bytes of {dtype} do not fill {destination.Length} floats");
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case DType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(source);
                for (int i = 0; i < halves.Length; i++) destination[i] = (float)halves[i];
                break;
            case DType.BF16:
                var raw = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < raw.Length; i++) destination[i] = BFloat16ToSingle(raw[i]);
                break;
            default:
                throw new ArgumentException($"{what}: {dtype} is not a floating-point type");
        }
    }

    /// <summary>Encodes f32 values as <paramref name="dtype"/> (F32, F16 or BF16) into <paramref name="destination"/>.</summary>
    public static void FromSingle(ReadOnlySpan<float> source, DType dtype, Span<byte> destination)
    {
        if (destination.Length != source.Length * dtype.Size())
            throw new ArgumentException($"{source.Length} floats as {dtype} need {source.Length * dtype.Size()} bytes, got {destination.Length}");
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.AsBytes(source).CopyTo(destination);
                break;
            case DType.F16:
                var halves = MemoryMarshal.Cast<byte, Half>(destination);
                for (int i = 0; i < source.Length; i++) halves[i] = (Half)source[i];
                break;
            case DType.BF16:
                var raw = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < source.Length; i++) raw[i] = SingleToBFloat16(source[i]);
                break;
            default:
                throw new ArgumentException($"{dtype} is not a floating-point type");
        }
    }
}
