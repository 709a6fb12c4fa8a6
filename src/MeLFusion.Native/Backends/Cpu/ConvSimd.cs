using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MeLFusion.Native.Backends.Cpu.Convolution;

/// <summary>
/// A float SIMD register as a static-abstract interface, so each convolution kernel is written once and
/// instantiated for 512-, 256- and 128-bit vectors and for plain scalars (the tail and no-SIMD path).
/// </summary>
internal unsafe interface ISimd<TSelf> where TSelf : unmanaged, ISimd<TSelf>
{
    static abstract bool IsAccelerated { get; }
    static abstract int Count { get; }
    static abstract TSelf Load(float* source);
    static abstract void Store(TSelf value, float* destination);
    static abstract TSelf Broadcast(float value);
    static abstract TSelf operator +(TSelf left, TSelf right);
    static abstract TSelf operator -(TSelf left, TSelf right);
    static abstract TSelf operator *(TSelf left, TSelf right);
    static abstract TSelf operator *(TSelf left, float right);
    /// <summary>The larger value, the platform's way (a single max instruction; NaN handling unspecified).</summary>
    static abstract TSelf Max(TSelf left, TSelf right);
    /// <summary>a·b + c, fused where the hardware has FMA.</summary>
    static abstract TSelf MultiplyAdd(TSelf a, TSelf b, TSelf c);
}

internal readonly unsafe struct Simd512(Vector512<float> value) : ISimd<Simd512>
{
    private readonly Vector512<float> _value = value;
    public static bool IsAccelerated => Vector512.IsHardwareAccelerated;
    public static int Count => Vector512<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 Load(float* source) => new(Vector512.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Simd512 value, float* destination) => value._value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 Broadcast(float value) => new(Vector512.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 operator +(Simd512 l, Simd512 r) => new(l._value + r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 operator -(Simd512 l, Simd512 r) => new(l._value - r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 operator *(Simd512 l, Simd512 r) => new(l._value * r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 operator *(Simd512 l, float r) => new(l._value * r);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 Max(Simd512 l, Simd512 r) => new(Vector512.MaxNative(l._value, r._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd512 MultiplyAdd(Simd512 a, Simd512 b, Simd512 c) => new(Vector512.MultiplyAddEstimate(a._value, b._value, c._value));
}

internal readonly unsafe struct Simd256(Vector256<float> value) : ISimd<Simd256>
{
    private readonly Vector256<float> _value = value;
    public static bool IsAccelerated => Vector256.IsHardwareAccelerated;
    public static int Count => Vector256<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 Load(float* source) => new(Vector256.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Simd256 value, float* destination) => value._value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 Broadcast(float value) => new(Vector256.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 operator +(Simd256 l, Simd256 r) => new(l._value + r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 operator -(Simd256 l, Simd256 r) => new(l._value - r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 operator *(Simd256 l, Simd256 r) => new(l._value * r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 operator *(Simd256 l, float r) => new(l._value * r);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 Max(Simd256 l, Simd256 r) => new(Vector256.MaxNative(l._value, r._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd256 MultiplyAdd(Simd256 a, Simd256 b, Simd256 c) => new(Vector256.MultiplyAddEstimate(a._value, b._value, c._value));
}

internal readonly unsafe struct Simd128(Vector128<float> value) : ISimd<Simd128>
{
    private readonly Vector128<float> _value = value;
    public static bool IsAccelerated => Vector128.IsHardwareAccelerated;
    public static int Count => Vector128<float>.Count;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 Load(float* source) => new(Vector128.Load(source));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Simd128 value, float* destination) => value._value.Store(destination);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 Broadcast(float value) => new(Vector128.Create(value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 operator +(Simd128 l, Simd128 r) => new(l._value + r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 operator -(Simd128 l, Simd128 r) => new(l._value - r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 operator *(Simd128 l, Simd128 r) => new(l._value * r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 operator *(Simd128 l, float r) => new(l._value * r);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 Max(Simd128 l, Simd128 r) => new(Vector128.MaxNative(l._value, r._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Simd128 MultiplyAdd(Simd128 a, Simd128 b, Simd128 c) => new(Vector128.MultiplyAddEstimate(a._value, b._value, c._value));
}

/// <summary>One float: the tail of every vector loop, and the whole loop where no SIMD exists.</summary>
internal readonly unsafe struct SimdScalar(float value) : ISimd<SimdScalar>
{
    private readonly float _value = value;
    public static bool IsAccelerated => true;
    public static int Count => 1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar Load(float* source) => new(*source);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(SimdScalar value, float* destination) => *destination = value._value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar Broadcast(float value) => new(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar operator +(SimdScalar l, SimdScalar r) => new(l._value + r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar operator -(SimdScalar l, SimdScalar r) => new(l._value - r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar operator *(SimdScalar l, SimdScalar r) => new(l._value * r._value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar operator *(SimdScalar l, float r) => new(l._value * r);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar Max(SimdScalar l, SimdScalar r) => new(float.MaxNative(l._value, r._value));
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static SimdScalar MultiplyAdd(SimdScalar a, SimdScalar b, SimdScalar c) => new(float.MultiplyAddEstimate(a._value, b._value, c._value));
}

/// <summary>An element-wise map applied while data is copied: identity or the fused input leaky-ReLU.</summary>
internal interface IElementMap
{
    T Apply<T>(T x) where T : unmanaged, ISimd<T>;
}

internal readonly struct IdentityMap : IElementMap
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T Apply<T>(T x) where T : unmanaged, ISimd<T> => x;
}

/// <summary>leaky_relu(x) = max(x, slope·x), exact for the slopes in [0, 1] the ops accept.</summary>
internal readonly struct LeakyReluMap(float slope) : IElementMap
{
    private readonly float _slope = slope;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public T Apply<T>(T x) where T : unmanaged, ISimd<T> => T.Max(x, x * _slope);
}

/// <summary>Row kernels shared by the convolutions: strided gathers into GEMM operands and the fused output epilogue.</summary>
internal static unsafe class ConvRows
{
    /// <summary>
    /// dst[j] = map(src[start + j·step]) for j in [0, count), and 0 where that index falls outside [0, srcLength):
    /// one row of an im2col matrix, zero padding included.
    /// </summary>
    public static void Gather<TMap>(float* src, long srcLength, long start, int step, float* dst, int count, TMap map)
        where TMap : struct, IElementMap
    {
        // Valid j satisfy 0 <= start + j·step < srcLength.
        long first = start >= 0 ? 0 : (-start + step - 1) / step;
        long end = start >= srcLength ? 0 : (srcLength - start + step - 1) / step;
        first = Math.Min(first, count);
        end = Math.Clamp(end, first, count);
        new Span<float>(dst, (int)first).Clear();
        new Span<float>(dst + end, (int)(count - end)).Clear();
        float* s = src + start + first * step;
        int n = (int)(end - first);
        if (step == 1)
            Map(s, dst + first, n, map);
        else
            for (int j = 0; j < n; j++)
                SimdScalar.Store(map.Apply(SimdScalar.Load(s + (long)j * step)), dst + first + j);
    }

    /// <summary>
    /// dst[start + j·step] += src[j] for j in [0, count) where that index falls inside [0, dstLength): the adjoint of
    /// <see cref="Gather{TMap}"/>, one row of a col2im.
    /// </summary>
    public static void ScatterAdd(float* src, int count, float* dst, long dstLength, long start, int step)
    {
        long first = start >= 0 ? 0 : (-start + step - 1) / step;
        long end = start >= dstLength ? 0 : (dstLength - start + step - 1) / step;
        first = Math.Min(first, count);
        end = Math.Clamp(end, first, count);
        float* d = dst + start + first * step;
        int n = (int)(end - first);
        if (step == 1)
            AddRow(src + first, d, 0f, d, n);
        else
            for (int j = 0; j < n; j++) d[(long)j * step] += src[first + j];
    }

    /// <summary>dst[j] = map(src[j]) with the widest vectors the machine has.</summary>
    private static void Map<TMap>(float* src, float* dst, int count, TMap map) where TMap : struct, IElementMap
    {
        int done = 0;
        if (Simd512.IsAccelerated) done = MapCore<Simd512, TMap>(src, dst, 0, count, map);
        else if (Simd256.IsAccelerated) done = MapCore<Simd256, TMap>(src, dst, 0, count, map);
        else if (Simd128.IsAccelerated) done = MapCore<Simd128, TMap>(src, dst, 0, count, map);
        MapCore<SimdScalar, TMap>(src, dst, done, count, map);
    }

    private static int MapCore<T, TMap>(float* src, float* dst, int start, int count, TMap map)
        where T : unmanaged, ISimd<T> where TMap : struct, IElementMap
    {
        int j = start;
        for (; j <= count - T.Count; j += T.Count)
            T.Store(map.Apply(T.Load(src + j)), dst + j);
        return j;
    }

    /// <summary>
    /// The fused epilogue: dst[row, col] = src[row, col] + bias[row] + residual[row, col] for a
    /// <paramref name="rows"/> × <paramref name="cols"/> block; bias and residual may be null. <paramref name="residual"/>
    /// may equal <paramref name="dst"/> (in place): each element is read just before it is written.
    /// </summary>
    public static void StoreOutput(float* src, long srcStride, float* dst, long dstStride, int rows, int cols,
        float* bias, float* residual, long residualStride)
    {
        CpuParallel.For(rows, Math.Max(1, 16384 / Math.Max(1, cols)), (start, end) =>
        {
            for (long r = start; r < end; r++)
                AddRow(src + r * srcStride, residual is null ? null : residual + r * residualStride, bias is null ? 0f : bias[r],
                    dst + r * dstStride, cols);
        });
    }

    /// <summary>dst[j] = src[j] + residual[j] + value; <paramref name="residual"/> may be null.</summary>
    private static void AddRow(float* src, float* residual, float value, float* dst, int count)
    {
        int done = 0;
        if (Simd512.IsAccelerated) done = AddRowCore<Simd512>(src, residual, value, dst, 0, count);
        else if (Simd256.IsAccelerated) done = AddRowCore<Simd256>(src, residual, value, dst, 0, count);
        else if (Simd128.IsAccelerated) done = AddRowCore<Simd128>(src, residual, value, dst, 0, count);
        AddRowCore<SimdScalar>(src, residual, value, dst, done, count);
    }

    private static int AddRowCore<T>(float* src, float* residual, float value, float* dst, int start, int count)
        where T : unmanaged, ISimd<T>
    {
        var v = T.Broadcast(value);
        int j = start;
        if (residual is null)
            for (; j <= count - T.Count; j += T.Count)
                T.Store(T.Load(src + j) + v, dst + j);
        else
            for (; j <= count - T.Count; j += T.Count)
                T.Store(T.Load(src + j) + T.Load(residual + j) + v, dst + j);
        return j;
    }

    /// <summary>
    /// Row stride for a scratch matrix of <paramref name="columns"/> floats per row: a multiple of 16 (64-byte rows)
    /// that is not a multiple of 512. Rows a multiple of 2 KiB apart share L1 cache sets, and a GEMM writing such a C
    /// measured 40% slower (54 against 89 GFLOP/s at a 4096-float stride).
    /// </summary>
    public static int PaddedStride(int columns)
    {
        int stride = (columns + 15) / 16 * 16;
        return stride % 512 == 0 ? stride + 16 : stride;
    }

    /// <summary>Number of columns per GEMM chunk so that a <paramref name="rows"/>-row operand stays within <paramref name="budgetFloats"/>.</summary>
    public static int ChunkColumns(long rows, long totalColumns, long budgetFloats, int minimumColumns)
    {
        long columns = Math.Max(minimumColumns, budgetFloats / Math.Max(1, rows));
        columns = Math.Min(columns, totalColumns);
        return (int)Math.Max(1, columns);
    }
}
