using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// A float vector of some width (1, 4, 8 or 16 lanes). Operators and math are written once against this interface
/// and instantiated by the drivers in <see cref="Simd"/> at every width; the JIT specialises and inlines each one,
/// so a wrapper costs nothing over raw <see cref="Vector512{T}"/> code. Masks are vectors with all bits set per
/// true lane, as the comparison intrinsics return them.
/// </summary>
internal unsafe interface IFloatVector<TSelf> where TSelf : unmanaged, IFloatVector<TSelf>
{
    static abstract int Count { get; }
    static abstract TSelf Create(float value);
    static abstract TSelf Load(float* source);
    static abstract void Store(TSelf value, float* destination);

    static abstract TSelf operator +(TSelf x, TSelf y);
    static abstract TSelf operator -(TSelf x, TSelf y);
    static abstract TSelf operator *(TSelf x, TSelf y);
    static abstract TSelf operator /(TSelf x, TSelf y);
    static abstract TSelf operator &(TSelf x, TSelf y);
    static abstract TSelf operator ^(TSelf x, TSelf y);

    /// <summary>x * y + z, fused where the hardware has FMA, otherwise rounded twice.</summary>
    static abstract TSelf MultiplyAdd(TSelf x, TSelf y, TSelf z);
    /// <summary>x * y + z rounded once, always; emulated (slowly) where the hardware has no FMA. For error terms.</summary>
    static abstract TSelf FusedMultiplyAdd(TSelf x, TSelf y, TSelf z);
    /// <summary>IEEE maximum: NaN if either operand is NaN.</summary>
    static abstract TSelf Max(TSelf x, TSelf y);
    /// <summary>x limited to [lower, upper] with single min/max instructions; NaN stays NaN.</summary>
    static abstract TSelf Clamp(TSelf x, TSelf lower, TSelf upper);
    static abstract TSelf Abs(TSelf x);
    /// <summary>IEEE square root (correctly rounded; NaN for negative x).</summary>
    static abstract TSelf Sqrt(TSelf x);
    static abstract TSelf GreaterThan(TSelf x, TSelf y);
    static abstract TSelf LessThan(TSelf x, TSelf y);
    static abstract TSelf Select(TSelf mask, TSelf ifTrue, TSelf ifFalse);
    /// <summary>Shifts each lane's bit pattern left as a 32-bit integer.</summary>
    static abstract TSelf ShiftBitsLeft(TSelf x, int count);
    /// <summary>Shifts each lane's bit pattern right as an unsigned 32-bit integer (zeros come in).</summary>
    static abstract TSelf ShiftBitsRight(TSelf x, int count);
    /// <summary>Adds the lanes' bit patterns as 32-bit integers.</summary>
    static abstract TSelf AddBits(TSelf x, TSelf y);

    /// <summary>Sum of all lanes.</summary>
    static abstract float SumAcross(TSelf x);
    /// <summary>Maximum of all lanes (IEEE: NaN if any lane is NaN).</summary>
    static abstract float MaxAcross(TSelf x);
}

/// <summary>One float: the scalar tail of every driver, running exactly the vector algorithm.</summary>
internal readonly unsafe struct FloatScalar(float value) : IFloatVector<FloatScalar>
{
    private readonly float _value = value;
    private static float AllBits => BitConverter.Int32BitsToSingle(-1);
    private static int Bits(FloatScalar x) => BitConverter.SingleToInt32Bits(x._value);
    private static FloatScalar FromBits(int bits) => new(BitConverter.Int32BitsToSingle(bits));

    public float Value => _value;
    public static int Count => 1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Create(float value) => new(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Load(float* source) => new(*source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(FloatScalar value, float* destination) => *destination = value._value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar operator +(FloatScalar x, FloatScalar y) => new(x._value + y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar operator -(FloatScalar x, FloatScalar y) => new(x._value - y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar operator *(FloatScalar x, FloatScalar y) => new(x._value * y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar operator /(FloatScalar x, FloatScalar y) => new(x._value / y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar operator &(FloatScalar x, FloatScalar y) => FromBits(Bits(x) & Bits(y));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar operator ^(FloatScalar x, FloatScalar y) => FromBits(Bits(x) ^ Bits(y));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar MultiplyAdd(FloatScalar x, FloatScalar y, FloatScalar z) => new(float.MultiplyAddEstimate(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar FusedMultiplyAdd(FloatScalar x, FloatScalar y, FloatScalar z) => new(MathF.FusedMultiplyAdd(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Max(FloatScalar x, FloatScalar y) => new(MathF.Max(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Clamp(FloatScalar x, FloatScalar lower, FloatScalar upper) => new(MathF.Min(MathF.Max(x._value, lower._value), upper._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Abs(FloatScalar x) => new(MathF.Abs(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Sqrt(FloatScalar x) => new(MathF.Sqrt(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar GreaterThan(FloatScalar x, FloatScalar y) => new(x._value > y._value ? AllBits : 0f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar LessThan(FloatScalar x, FloatScalar y) => new(x._value < y._value ? AllBits : 0f);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar Select(FloatScalar mask, FloatScalar ifTrue, FloatScalar ifFalse) => Bits(mask) != 0 ? ifTrue : ifFalse;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar ShiftBitsLeft(FloatScalar x, int count) => FromBits(Bits(x) << count);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar ShiftBitsRight(FloatScalar x, int count) => FromBits(Bits(x) >>> count);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static FloatScalar AddBits(FloatScalar x, FloatScalar y) => FromBits(Bits(x) + Bits(y));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumAcross(FloatScalar x) => x._value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(FloatScalar x) => x._value;
}

/// <summary>Four floats (SSE / NEON).</summary>
internal readonly unsafe struct Float128(Vector128<float> value) : IFloatVector<Float128>
{
    private readonly Vector128<float> _value = value;

    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Create(float value) => new(Vector128.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Load(float* source) => new(Vector128.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Float128 value, float* destination) => value._value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator +(Float128 x, Float128 y) => new(x._value + y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator -(Float128 x, Float128 y) => new(x._value - y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator *(Float128 x, Float128 y) => new(x._value * y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator /(Float128 x, Float128 y) => new(x._value / y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator &(Float128 x, Float128 y) => new(x._value & y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 operator ^(Float128 x, Float128 y) => new(x._value ^ y._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 MultiplyAdd(Float128 x, Float128 y, Float128 z) => new(Vector128.MultiplyAddEstimate(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 FusedMultiplyAdd(Float128 x, Float128 y, Float128 z) => new(Vector128.FusedMultiplyAdd(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Max(Float128 x, Float128 y) => new(Vector128.Max(x._value, y._value));
    /// <summary>x goes second: x86 min/max return their second operand when either is NaN (Arm's propagate NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Clamp(Float128 x, Float128 lower, Float128 upper) =>
        new(Vector128.MinNative(upper._value, Vector128.MaxNative(lower._value, x._value)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Abs(Float128 x) => new(Vector128.Abs(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Sqrt(Float128 x) => new(Vector128.Sqrt(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 GreaterThan(Float128 x, Float128 y) => new(Vector128.GreaterThan(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 LessThan(Float128 x, Float128 y) => new(Vector128.LessThan(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 Select(Float128 mask, Float128 ifTrue, Float128 ifFalse) => new(Vector128.ConditionalSelect(mask._value, ifTrue._value, ifFalse._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 ShiftBitsLeft(Float128 x, int count) => new((x._value.AsInt32() << count).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 ShiftBitsRight(Float128 x, int count) => new((x._value.AsUInt32() >>> count).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float128 AddBits(Float128 x, Float128 y) => new((x._value.AsInt32() + y._value.AsInt32()).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumAcross(Float128 x) => Vector128.Sum(x._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Float128 x)
    {
        var v = Vector128.Max(x._value, Vector128.Shuffle(x._value, Vector128.Create(2, 3, 0, 1)));
        v = Vector128.Max(v, Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2)));
        return v.ToScalar();
    }
}

/// <summary>Eight floats (AVX2).</summary>
internal readonly unsafe struct Float256(Vector256<float> value) : IFloatVector<Float256>
{
    private readonly Vector256<float> _value = value;

    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Create(float value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Load(float* source) => new(Vector256.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Float256 value, float* destination) => value._value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator +(Float256 x, Float256 y) => new(x._value + y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator -(Float256 x, Float256 y) => new(x._value - y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator *(Float256 x, Float256 y) => new(x._value * y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator /(Float256 x, Float256 y) => new(x._value / y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator &(Float256 x, Float256 y) => new(x._value & y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 operator ^(Float256 x, Float256 y) => new(x._value ^ y._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 MultiplyAdd(Float256 x, Float256 y, Float256 z) => new(Vector256.MultiplyAddEstimate(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 FusedMultiplyAdd(Float256 x, Float256 y, Float256 z) => new(Vector256.FusedMultiplyAdd(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Max(Float256 x, Float256 y) => new(Vector256.Max(x._value, y._value));
    /// <summary>x goes second: x86 min/max return their second operand when either is NaN (Arm's propagate NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Clamp(Float256 x, Float256 lower, Float256 upper) =>
        new(Vector256.MinNative(upper._value, Vector256.MaxNative(lower._value, x._value)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Abs(Float256 x) => new(Vector256.Abs(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Sqrt(Float256 x) => new(Vector256.Sqrt(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 GreaterThan(Float256 x, Float256 y) => new(Vector256.GreaterThan(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 LessThan(Float256 x, Float256 y) => new(Vector256.LessThan(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 Select(Float256 mask, Float256 ifTrue, Float256 ifFalse) => new(Vector256.ConditionalSelect(mask._value, ifTrue._value, ifFalse._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 ShiftBitsLeft(Float256 x, int count) => new((x._value.AsInt32() << count).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 ShiftBitsRight(Float256 x, int count) => new((x._value.AsUInt32() >>> count).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float256 AddBits(Float256 x, Float256 y) => new((x._value.AsInt32() + y._value.AsInt32()).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumAcross(Float256 x) => Vector256.Sum(x._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Float256 x) =>
        Float128.MaxAcross(new Float128(Vector128.Max(x._value.GetLower(), x._value.GetUpper())));
}

/// <summary>Sixteen floats (AVX-512).</summary>
internal readonly unsafe struct Float512(Vector512<float> value) : IFloatVector<Float512>
{
    private readonly Vector512<float> _value = value;

    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Create(float value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Load(float* source) => new(Vector512.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Float512 value, float* destination) => value._value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator +(Float512 x, Float512 y) => new(x._value + y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator -(Float512 x, Float512 y) => new(x._value - y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator *(Float512 x, Float512 y) => new(x._value * y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator /(Float512 x, Float512 y) => new(x._value / y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator &(Float512 x, Float512 y) => new(x._value & y._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 operator ^(Float512 x, Float512 y) => new(x._value ^ y._value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 MultiplyAdd(Float512 x, Float512 y, Float512 z) => new(Vector512.MultiplyAddEstimate(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 FusedMultiplyAdd(Float512 x, Float512 y, Float512 z) => new(Vector512.FusedMultiplyAdd(x._value, y._value, z._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Max(Float512 x, Float512 y) => new(Vector512.Max(x._value, y._value));
    /// <summary>x goes second: x86 min/max return their second operand when either is NaN (Arm's propagate NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Clamp(Float512 x, Float512 lower, Float512 upper) =>
        new(Vector512.MinNative(upper._value, Vector512.MaxNative(lower._value, x._value)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Abs(Float512 x) => new(Vector512.Abs(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Sqrt(Float512 x) => new(Vector512.Sqrt(x._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 GreaterThan(Float512 x, Float512 y) => new(Vector512.GreaterThan(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 LessThan(Float512 x, Float512 y) => new(Vector512.LessThan(x._value, y._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 Select(Float512 mask, Float512 ifTrue, Float512 ifFalse) => new(Vector512.ConditionalSelect(mask._value, ifTrue._value, ifFalse._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 ShiftBitsLeft(Float512 x, int count) => new((x._value.AsInt32() << count).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 ShiftBitsRight(Float512 x, int count) => new((x._value.AsUInt32() >>> count).AsSingle());
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float512 AddBits(Float512 x, Float512 y) => new((x._value.AsInt32() + y._value.AsInt32()).AsSingle());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SumAcross(Float512 x) => Vector512.Sum(x._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MaxAcross(Float512 x) =>
        Float256.MaxAcross(new Float256(Vector256.Max(x._value.GetLower(), x._value.GetUpper())));
}

/// <summary>An elementwise function of one float, written once for every vector width.</summary>
internal interface IUnaryOperator
{
    static abstract TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>An elementwise function of two floats, written once for every vector width.</summary>
internal interface IBinaryOperator
{
    static abstract TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>An elementwise function of three floats, written once for every vector width.</summary>
internal interface ITernaryOperator
{
    static abstract TV Invoke<TV>(TV x, TV y, TV z) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>An elementwise function of four floats, written once for every vector width.</summary>
internal interface IQuaternaryOperator
{
    static abstract TV Invoke<TV>(TV x, TV y, TV z, TV w) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>An associative, commutative reduction (sum, max) with its identity and its across-lanes form.</summary>
internal interface IAggregationOperator : IBinaryOperator
{
    static abstract float Identity { get; }
    static abstract float Across<TV>(TV x) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>Where a driver reads an operand from: a contiguous array or one value broadcast to every element.</summary>
internal interface IOperand
{
    TV Load<TV>(long index) where TV : unmanaged, IFloatVector<TV>;
}

/// <summary>Operand read from consecutive floats.</summary>
internal readonly unsafe struct ContiguousOperand(float* pointer) : IOperand
{
    private readonly float* _pointer = pointer;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Load<TV>(long index) where TV : unmanaged, IFloatVector<TV> => TV.Load(_pointer + index);
}

/// <summary>Operand that is the same value at every index.</summary>
internal readonly struct BroadcastOperand(float value) : IOperand
{
    private readonly float _value = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TV Load<TV>(long index) where TV : unmanaged, IFloatVector<TV> => TV.Create(_value);
}

/// <summary>What an aggregation does with each transformed element besides reducing it: nothing, or store it.</summary>
internal interface IElementSink
{
    unsafe void Store<TV>(TV value, long index) where TV : unmanaged, IFloatVector<TV>;
}

internal readonly struct DiscardElements : IElementSink
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store<TV>(TV value, long index) where TV : unmanaged, IFloatVector<TV> { }
}

internal readonly unsafe struct StoreElements(float* destination) : IElementSink
{
    private readonly float* _destination = destination;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store<TV>(TV value, long index) where TV : unmanaged, IFloatVector<TV> => TV.Store(value, _destination + index);
}

/// <summary>
/// Generic SIMD drivers in the style of TensorPrimitives: one loop per arity, instantiated for Vector512, then
/// Vector256, Vector128 and finally one float at a time, each width taking what the wider one left. On an AVX-512
/// machine the 256/128-bit steps run at most once per call (the tail); elsewhere they carry the whole loop. The
/// scalar step runs the same operator code as the vectors, so every element gets the same algorithm. Destinations
/// may alias an operand exactly (in place): every element is read before it is written, and only once.
/// </summary>
internal static unsafe class Simd
{
    /// <summary>
    /// How every per-width loop is compiled: fully optimised on first call, so a kernel's one long loop never runs in
    /// tier-0 code where each operator call stays a call; and never inlined, so each loop is its own JIT root whose
    /// inlining budget covers the whole operator (inlined into a caller, a large operator such as GELU exhausts the
    /// caller's budget and its vector helpers stay calls, ~30x slower).
    /// </summary>
    private const MethodImplOptions KernelLoop = MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining;

    /// <summary>d[i] = TOp(x[i]).</summary>
    public static void Map<TOp>(float* x, float* d, long n) where TOp : IUnaryOperator
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated) i = MapBlocks<Float512, TOp>(x, d, i, n);
        if (Vector256.IsHardwareAccelerated) i = MapBlocks<Float256, TOp>(x, d, i, n);
        if (Vector128.IsHardwareAccelerated) i = MapBlocks<Float128, TOp>(x, d, i, n);
        MapBlocks<FloatScalar, TOp>(x, d, i, n);
    }

    /// <summary>d[i] = TOp(x[i], y[i]) for operands that are arrays or broadcast values.</summary>
    public static void Map<TOp, TX, TY>(TX x, TY y, float* d, long n)
        where TOp : IBinaryOperator where TX : struct, IOperand where TY : struct, IOperand
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated) i = MapBlocks<Float512, TOp, TX, TY>(x, y, d, i, n);
        if (Vector256.IsHardwareAccelerated) i = MapBlocks<Float256, TOp, TX, TY>(x, y, d, i, n);
        if (Vector128.IsHardwareAccelerated) i = MapBlocks<Float128, TOp, TX, TY>(x, y, d, i, n);
        MapBlocks<FloatScalar, TOp, TX, TY>(x, y, d, i, n);
    }

    /// <summary>d[i] = TOp(x[i], y[i], z[i]) for operands that are arrays or broadcast values.</summary>
    public static void Map<TOp, TX, TY, TZ>(TX x, TY y, TZ z, float* d, long n)
        where TOp : ITernaryOperator where TX : struct, IOperand where TY : struct, IOperand where TZ : struct, IOperand
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated) i = MapBlocks<Float512, TOp, TX, TY, TZ>(x, y, z, d, i, n);
        if (Vector256.IsHardwareAccelerated) i = MapBlocks<Float256, TOp, TX, TY, TZ>(x, y, z, d, i, n);
        if (Vector128.IsHardwareAccelerated) i = MapBlocks<Float128, TOp, TX, TY, TZ>(x, y, z, d, i, n);
        MapBlocks<FloatScalar, TOp, TX, TY, TZ>(x, y, z, d, i, n);
    }

    /// <summary>d[i] = TOp(x[i], y[i], z[i], w[i]) for operands that are arrays or broadcast values.</summary>
    public static void Map<TOp, TX, TY, TZ, TW>(TX x, TY y, TZ z, TW w, float* d, long n)
        where TOp : IQuaternaryOperator
        where TX : struct, IOperand where TY : struct, IOperand where TZ : struct, IOperand where TW : struct, IOperand
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated) i = MapBlocks<Float512, TOp, TX, TY, TZ, TW>(x, y, z, w, d, i, n);
        if (Vector256.IsHardwareAccelerated) i = MapBlocks<Float256, TOp, TX, TY, TZ, TW>(x, y, z, w, d, i, n);
        if (Vector128.IsHardwareAccelerated) i = MapBlocks<Float128, TOp, TX, TY, TZ, TW>(x, y, z, w, d, i, n);
        MapBlocks<FloatScalar, TOp, TX, TY, TZ, TW>(x, y, z, w, d, i, n);
    }

    /// <summary>
    /// d[i] = TOp(x[i * xStride], y[i * yStride]), one float at a time: the fallback for operands that are neither
    /// contiguous nor broadcast (e.g. transposed views).
    /// </summary>
    [MethodImpl(KernelLoop)]
    public static void MapStrided<TOp>(float* x, long xStride, float* y, long yStride, float* d, long n) where TOp : IBinaryOperator
    {
        for (long i = 0; i < n; i++)
            FloatScalar.Store(TOp.Invoke(FloatScalar.Load(x + i * xStride), FloatScalar.Load(y + i * yStride)), d + i);
    }

    /// <summary>Reduces TTransform(x[i], y) over i with TAggregate; <paramref name="sink"/> sees each transformed element.</summary>
    public static float Aggregate<TTransform, TAggregate, TSink>(float* x, float y, TSink sink, long n)
        where TTransform : IBinaryOperator where TAggregate : IAggregationOperator where TSink : struct, IElementSink
    {
        long i = 0;
        float result = TAggregate.Identity;
        if (Vector512.IsHardwareAccelerated) result = Combine<TAggregate>(result, AggregateBlocks<Float512, TTransform, TAggregate, TSink>(x, y, sink, ref i, n));
        if (Vector256.IsHardwareAccelerated) result = Combine<TAggregate>(result, AggregateBlocks<Float256, TTransform, TAggregate, TSink>(x, y, sink, ref i, n));
        if (Vector128.IsHardwareAccelerated) result = Combine<TAggregate>(result, AggregateBlocks<Float128, TTransform, TAggregate, TSink>(x, y, sink, ref i, n));
        return Combine<TAggregate>(result, AggregateBlocks<FloatScalar, TTransform, TAggregate, TSink>(x, y, sink, ref i, n));
    }

    /// <summary>Reduces TTransform(x[i], y) over i with TAggregate.</summary>
    public static float Aggregate<TTransform, TAggregate>(float* x, float y, long n)
        where TTransform : IBinaryOperator where TAggregate : IAggregationOperator =>
        Aggregate<TTransform, TAggregate, DiscardElements>(x, y, default, n);

    [MethodImpl(KernelLoop)]
    private static long MapBlocks<TV, TOp>(float* x, float* d, long i, long n)
        where TV : unmanaged, IFloatVector<TV> where TOp : IUnaryOperator
    {
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(TOp.Invoke(TV.Load(x + i)), d + i);
        return i;
    }

    [MethodImpl(KernelLoop)]
    private static long MapBlocks<TV, TOp, TX, TY>(TX x, TY y, float* d, long i, long n)
        where TV : unmanaged, IFloatVector<TV> where TOp : IBinaryOperator where TX : struct, IOperand where TY : struct, IOperand
    {
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(TOp.Invoke(x.Load<TV>(i), y.Load<TV>(i)), d + i);
        return i;
    }

    [MethodImpl(KernelLoop)]
    private static long MapBlocks<TV, TOp, TX, TY, TZ>(TX x, TY y, TZ z, float* d, long i, long n)
        where TV : unmanaged, IFloatVector<TV> where TOp : ITernaryOperator
        where TX : struct, IOperand where TY : struct, IOperand where TZ : struct, IOperand
    {
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(TOp.Invoke(x.Load<TV>(i), y.Load<TV>(i), z.Load<TV>(i)), d + i);
        return i;
    }

    [MethodImpl(KernelLoop)]
    private static long MapBlocks<TV, TOp, TX, TY, TZ, TW>(TX x, TY y, TZ z, TW w, float* d, long i, long n)
        where TV : unmanaged, IFloatVector<TV> where TOp : IQuaternaryOperator
        where TX : struct, IOperand where TY : struct, IOperand where TZ : struct, IOperand where TW : struct, IOperand
    {
        for (; i <= n - TV.Count; i += TV.Count)
            TV.Store(TOp.Invoke(x.Load<TV>(i), y.Load<TV>(i), z.Load<TV>(i), w.Load<TV>(i)), d + i);
        return i;
    }

    /// <summary>Four independent accumulators hide the add latency and keep partial sums short.</summary>
    [MethodImpl(KernelLoop)]
    private static float AggregateBlocks<TV, TTransform, TAggregate, TSink>(float* x, float y, TSink sink, ref long i, long n)
        where TV : unmanaged, IFloatVector<TV> where TTransform : IBinaryOperator where TAggregate : IAggregationOperator
        where TSink : struct, IElementSink
    {
        var vy = TV.Create(y);
        TV a0 = TV.Create(TAggregate.Identity), a1 = a0, a2 = a0, a3 = a0;
        long j = i;
        for (; j <= n - 4 * TV.Count; j += 4 * TV.Count)
        {
            TV t0 = TTransform.Invoke(TV.Load(x + j), vy);
            TV t1 = TTransform.Invoke(TV.Load(x + j + TV.Count), vy);
            TV t2 = TTransform.Invoke(TV.Load(x + j + 2 * TV.Count), vy);
            TV t3 = TTransform.Invoke(TV.Load(x + j + 3 * TV.Count), vy);
            sink.Store(t0, j);
            sink.Store(t1, j + TV.Count);
            sink.Store(t2, j + 2 * TV.Count);
            sink.Store(t3, j + 3 * TV.Count);
            a0 = TAggregate.Invoke(a0, t0);
            a1 = TAggregate.Invoke(a1, t1);
            a2 = TAggregate.Invoke(a2, t2);
            a3 = TAggregate.Invoke(a3, t3);
        }
        for (; j <= n - TV.Count; j += TV.Count)
        {
            TV t = TTransform.Invoke(TV.Load(x + j), vy);
            sink.Store(t, j);
            a0 = TAggregate.Invoke(a0, t);
        }
        i = j;
        return TAggregate.Across(TAggregate.Invoke(TAggregate.Invoke(a0, a1), TAggregate.Invoke(a2, a3)));
    }

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, <paramref name="count"/>) in parallel, cut at multiples of
    /// <see cref="ParallelBlock"/> elements so that every chunk keeps the base pointer's 64-byte alignment.
    /// </summary>
    public static void ParallelFor(long count, Action<long, long> body)
    {
        long blocks = (count + ParallelBlock - 1) / ParallelBlock;
        CpuParallel.For(blocks, 1, (first, last) => body(first * ParallelBlock, Math.Min(count, last * ParallelBlock)));
    }

    /// <summary>d[i] = TOp(x[i]) over [0, <paramref name="n"/>) in parallel.</summary>
    public static void ParallelMap<TOp>(float* x, float* d, long n) where TOp : IUnaryOperator =>
        ParallelFor(n, (start, end) => Map<TOp>(x + start, d + start, end - start));

    /// <summary>
    /// Runs <paramref name="body"/>(firstRow, endRow) in parallel over the rows of <paramref name="count"/> elements
    /// laid out as rows of <paramref name="rowLength"/>, giving each work unit about <see cref="ParallelBlock"/> elements.
    /// </summary>
    public static void ParallelRows(long count, long rowLength, Action<long, long> body)
    {
        long rows = rowLength == 0 ? 0 : count / rowLength;
        CpuParallel.For(rows, Math.Max(1, ParallelBlock / Math.Max(1, rowLength)), body);
    }

    /// <summary>Elements per parallel work unit: enough to amortise scheduling, small enough to balance two cores.</summary>
    public const long ParallelBlock = 16384;

    private static float Combine<TAggregate>(float x, float y) where TAggregate : IAggregationOperator =>
        TAggregate.Invoke(new FloatScalar(x), new FloatScalar(y)).Value;
}

/// <summary>x, ignoring y: turns a transform-then-reduce into a plain reduction.</summary>
internal readonly struct FirstOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => x;
}

/// <summary>x + y; also the sum aggregation.</summary>
internal readonly struct AddOperator : IAggregationOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => x + y;
    public static float Identity => 0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Across<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.SumAcross(x);
}

/// <summary>IEEE max(x, y); also the max aggregation.</summary>
internal readonly struct MaxOperator : IAggregationOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => TV.Max(x, y);
    public static float Identity => float.NegativeInfinity;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Across<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => TV.MaxAcross(x);
}

internal readonly struct SubtractOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => x - y;
}

internal readonly struct MultiplyOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => x * y;
}

internal readonly struct DivideOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV> => x / y;
}

/// <summary>(x - y)²: with y the mean, the terms of a two-pass variance; with y = 0, squares.</summary>
internal readonly struct SquaredDifferenceOperator : IBinaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y) where TV : unmanaged, IFloatVector<TV>
    {
        TV d = x - y;
        return d * d;
    }
}

/// <summary>x * y + z.</summary>
internal readonly struct MultiplyAddOperator : ITernaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV y, TV z) where TV : unmanaged, IFloatVector<TV> => TV.MultiplyAdd(x, y, z);
}

/// <summary>
/// TActivation((x - mean) * scale + shift): normalisation, affine map and activation in one pass. Subtracting the
/// mean first is exact for x near the mean, so the result keeps full precision even when |mean| &gt;&gt; std (the
/// folded form x * scale + (shift - mean * scale) would round at the magnitude of x * scale).
/// </summary>
internal readonly struct NormalizeOperator<TActivation> : IQuaternaryOperator where TActivation : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x, TV mean, TV scale, TV shift) where TV : unmanaged, IFloatVector<TV> =>
        TActivation.Invoke(TV.MultiplyAdd(x - mean, scale, shift));
}

/// <summary>x unchanged; the "no activation" case of fused kernels.</summary>
internal readonly struct IdentityOperator : IUnaryOperator
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TV Invoke<TV>(TV x) where TV : unmanaged, IFloatVector<TV> => x;
}
