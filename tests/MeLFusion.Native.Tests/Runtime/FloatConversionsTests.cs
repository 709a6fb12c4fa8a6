using MeLFusion.Native.Runtime;

namespace MeLFusion.Native.Tests.Runtime;

public class FloatConversionsTests
{
    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.0f, 0xC000)]
    [InlineData(1.00390625f, 0x3F80)] // exactly halfway between 1 and the next bf16: ties to even (down)
    [InlineData(1.01171875f, 0x3F82)] // halfway above an odd mantissa: ties to even (up)
    [InlineData(float.PositiveInfinity, 0x7F80)]
    public void BFloat16RoundsToNearestEven(float value, int expected) =>
        Assert.Equal((ushort)expected, FloatConversions.SingleToBFloat16(value));

    [Fact]
    public void BFloat16KeepsNaN() => Assert.True(float.IsNaN(FloatConversions.BFloat16ToSingle(FloatConversions.SingleToBFloat16(float.NaN))));

    [Fact]
    public void HalfAndBFloat16RoundTripRepresentableValues()
    {
        float[] values = [0f, -0f, 0.5f, 1024f, -3.75f, 6.103515625e-05f];
        foreach (var dtype in new[] { DType.F16, DType.BF16 })
        {
            var bytes = new byte[values.Length * 2];
            FloatConversions.FromSingle(values, dtype, bytes);
            var back = new float[values.Length];
            FloatConversions.ToSingle(bytes, dtype, back, "test");
            Assert.Equal(values, back);
        }
    }

    [Fact]
    public void IntegerDtypesAreRejected() =>
        Assert.Throws<ArgumentException>(() => FloatConversions.ToSingle(new byte[4], DType.I32, new float[1], "ids"));
}
