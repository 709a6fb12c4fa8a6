using System.Runtime.CompilerServices;

namespace MeLFusion.Native.Runtime;

/// <summary>
/// Counter-based Philox4x32-10 random numbers (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", the
/// Random123 constants), mapped to tensor elements so that any device produces the same noise for the same seed.
/// </summary>
/// <remarks>
/// <para>The mapping from <c>(seed, n)</c>, n the 64-bit index of an element in the stream, to values is fixed:</para>
/// <list type="number">
/// <item>key = (low 32 bits of seed, high 32 bits of seed); block b = n / 4; lane = n % 4;
/// counter = (low 32 bits of b, high 32 bits of b, 0, 0).</item>
/// <item><c>raw(n)</c> = word <c>lane</c> of Philox4x32-10(counter, key).</item>
/// <item><c>uniform(n)</c> = (2·(raw(n) &gt;&gt; 9) + 1) · 2⁻²⁴: an odd multiple of 2⁻²⁴, exact in f32, strictly
/// inside (0, 1), mean exactly ½.</item>
/// <item><c>normal(n)</c>, Box–Muller on the lane pairs (0, 1) and (2, 3) of block b: with u₁ = uniform(4b + 2p),
/// u₂ = uniform(4b + 2p + 1), p = lane / 2, r = √(−2 ln u₁): even lanes give r·cos(2π u₂), odd lanes r·sin(2π u₂).
/// Computed in f64 (log, sqrt, sin and cos of the f64 product 2π·u₂) and rounded once to f32.</item>
/// </list>
/// <para>So element i of a tensor filled from stream offset <c>o</c> depends only on (seed, o + i): a fill may be split
/// across threads or devices at any boundary. A CUDA kernel that computes the same f64 formulas reproduces the raw
/// words and uniforms bit for bit, and the normals to within one f32 ulp (libm differences in the last f64 bit).</para>
/// </remarks>
public static class Philox
{
    /// <summary>Round multipliers and Weyl key increments of Philox4x32 (Random123).</summary>
    public const uint Multiplier0 = 0xD2511F53, Multiplier1 = 0xCD9E8D57, KeyIncrement0 = 0x9E3779B9, KeyIncrement1 = 0xBB67AE85;

    /// <summary>Rounds of the standard Philox4x32-10.</summary>
    public const int Rounds = 10;

    /// <summary>Four 32-bit words: a Philox counter or output block.</summary>
    public readonly record struct Block(uint X0, uint X1, uint X2, uint X3)
    {
        public uint this[int lane] => lane switch
        {
            0 => X0,
            1 => X1,
            2 => X2,
            3 => X3,
            _ => throw new ArgumentOutOfRangeException(nameof(lane), lane, "a Philox block has lanes 0..3"),
        };
    }

    /// <summary>Philox4x32-10 of <paramref name="counter"/> under the key (<paramref name="key0"/>, <paramref name="key1"/>).</summary>
    public static Block Generate(Block counter, uint key0, uint key1)
    {
        uint x0 = counter.X0, x1 = counter.X1, x2 = counter.X2, x3 = counter.X3;
        for (int round = 0; round < Rounds; round++)
        {
            if (round > 0)
            {
                key0 += KeyIncrement0;
                key1 += KeyIncrement1;
            }
            ulong product0 = (ulong)Multiplier0 * x0;
            ulong product1 = (ulong)Multiplier1 * x2;
            uint next0 = (uint)(product1 >> 32) ^ x1 ^ key0;
            uint next2 = (uint)(product0 >> 32) ^ x3 ^ key1;
            x1 = (uint)product1;
            x3 = (uint)product0;
            x0 = next0;
            x2 = next2;
        }
        return new Block(x0, x1, x2, x3);
    }

    /// <summary>The output block holding stream elements 4b .. 4b + 3 of <paramref name="seed"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Block StreamBlock(ulong seed, ulong block) =>
        Generate(new Block((uint)block, (uint)(block >> 32), 0, 0), (uint)seed, (uint)(seed >> 32));

    /// <summary>Maps a raw word to an odd multiple of 2⁻²⁴ in (0, 1); exact in f32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToUniform(uint raw) => (2 * (raw >> 9) + 1) * (1f / (1 << 24));

    /// <summary>Raw 32-bit words of stream elements offset .. offset + destination.Length - 1.</summary>
    public static void FillRaw(ulong seed, ulong offset, Span<uint> destination) =>
        Drive<RawWords, uint>(seed, offset, destination, 0);

    /// <summary>Uniform floats in (0, 1) of stream elements offset .. offset + destination.Length - 1.</summary>
    public static void FillUniform(ulong seed, ulong offset, Span<float> destination) =>
        Drive<UniformValues, float>(seed, offset, destination, 0);

    /// <summary>Standard normal floats of stream elements offset .. offset + destination.Length - 1.</summary>
    public static void FillNormal(ulong seed, ulong offset, Span<float> destination) =>
        Drive<NormalValues, float>(seed, offset, destination, 0);

    /// <summary>
    /// destination[i] += scale · normal(offset + i), with normal(n) the f32 value <see cref="FillNormal"/> writes, so
    /// adding generated noise equals adding an explicit noise tensor filled from the same stream.
    /// </summary>
    public static void AddScaledNormal(ulong seed, ulong offset, float scale, Span<float> destination) =>
        Drive<ScaledNormalSum, float>(seed, offset, destination, scale);

    /// <summary>Writes the elements of one output block from lane <c>firstLane</c> on (up to 4 − firstLane of them).</summary>
    private interface IBlockWriter<T>
    {
        static abstract void Write(in Block block, int firstLane, Span<T> destination, float scale);
    }

    private readonly struct RawWords : IBlockWriter<uint>
    {
        public static void Write(in Block block, int firstLane, Span<uint> destination, float scale)
        {
            for (int i = 0; i < destination.Length; i++) destination[i] = block[firstLane + i];
        }
    }

    private readonly struct UniformValues : IBlockWriter<float>
    {
        public static void Write(in Block block, int firstLane, Span<float> destination, float scale)
        {
            for (int i = 0; i < destination.Length; i++) destination[i] = ToUniform(block[firstLane + i]);
        }
    }

    private readonly struct NormalValues : IBlockWriter<float>
    {
        public static void Write(in Block block, int firstLane, Span<float> destination, float scale)
        {
            Span<float> normals = stackalloc float[4];
            Normals(block, normals);
            normals.Slice(firstLane, destination.Length).CopyTo(destination);
        }
    }

    private readonly struct ScaledNormalSum : IBlockWriter<float>
    {
        public static void Write(in Block block, int firstLane, Span<float> destination, float scale)
        {
            Span<float> normals = stackalloc float[4];
            Normals(block, normals);
            for (int i = 0; i < destination.Length; i++) destination[i] += scale * normals[firstLane + i];
        }
    }

    /// <summary>Box–Muller on the lane pairs (0, 1) and (2, 3), in f64, each value rounded once to f32.</summary>
    private static void Normals(in Block block, Span<float> normals)
    {
        for (int first = 0; first < 4; first += 2)
        {
            double radius = Math.Sqrt(-2.0 * Math.Log(ToUniform(block[first])));
            var (sin, cos) = Math.SinCos(2.0 * Math.PI * ToUniform(block[first + 1]));
            normals[first] = (float)(radius * cos);
            normals[first + 1] = (float)(radius * sin);
        }
    }

    /// <summary>One generic loop for every fill: one Philox block per four elements, partial blocks at both ends.</summary>
    private static void Drive<TWriter, T>(ulong seed, ulong offset, Span<T> destination, float scale)
        where TWriter : IBlockWriter<T>
    {
        int i = 0;
        while (i < destination.Length)
        {
            ulong index = offset + (ulong)i;
            int firstLane = (int)(index & 3);
            int count = Math.Min(4 - firstLane, destination.Length - i);
            TWriter.Write(StreamBlock(seed, index >> 2), firstLane, destination.Slice(i, count), scale);
            i += count;
        }
    }
}

/// <summary>
/// A Philox stream position: a seed and the index of the next element. Each fill consumes as many stream elements as
/// it writes, so a sequence of fills from one generator equals one fill of their total length.
/// </summary>
public sealed class PhiloxGenerator(ulong seed, ulong offset = 0)
{
    public ulong Seed { get; } = seed;

    /// <summary>Index of the next stream element.</summary>
    public ulong Offset { get; private set; } = offset;

    public void NextNormal(Span<float> destination)
    {
        Philox.FillNormal(Seed, Offset, destination);
        Offset += (ulong)destination.Length;
    }

    public void NextUniform(Span<float> destination)
    {
        Philox.FillUniform(Seed, Offset, destination);
        Offset += (ulong)destination.Length;
    }

    /// <summary>destination[i] += scale · next normal: a noise term without a noise buffer.</summary>
    public void AddNextNormal(float scale, Span<float> destination)
    {
        Philox.AddScaledNormal(Seed, Offset, scale, destination);
        Offset += (ulong)destination.Length;
    }

    /// <summary>Skips <paramref name="count"/> stream elements.</summary>
    public void Skip(ulong count) => Offset += count;
}
