using System.Runtime.CompilerServices;
using MeLFusion.Native.Backends.Cpu.Convolution;
using MeLFusion.Native.Ops;

namespace MeLFusion.Native.Backends.Cpu;

/// <summary>
/// Tiling and workspace of a Winograd F(4x4, 3x3) convolution. Output tiles of 4x4 (6x6 input patches) are numbered
/// across the whole batch and processed in chunks; the workspace holds the transformed weights U [36][Cout·Cin],
/// the transformed input chunk V [36][Cin][tile stride] and the products M [36][Cout][tile stride].
/// </summary>
internal readonly struct WinogradLayout
{
    /// <summary>Tiles per SIMD group; every vector width divides it, and chunks and planes are padded to it.</summary>
    public const int Lanes = 16;

    /// <summary>Bound on V and M together (24 MiB) so a chunk's operands stay near the last-level cache.</summary>
    private const long ChunkBudgetFloats = 6L << 20;

    public WinogradLayout(Conv2dGeometry g)
    {
        Geometry = g;
        TilesHigh = (g.OutHeight + 3) / 4;
        TilesWide = (g.OutWidth + 3) / 4;
        Tiles = g.Batch * TilesHigh * TilesWide;
        WeightPlane = RoundUp((long)g.OutChannels * g.InChannels);
        long budgetTiles = ChunkBudgetFloats / (36L * (g.InChannels + g.OutChannels)) / Lanes * Lanes;
        ChunkTiles = (int)Math.Min(RoundUp(Tiles), Math.Max(Lanes, budgetTiles));
        TileStride = ConvRows.PaddedStride(ChunkTiles);
        WorkspaceFloats = 36 * (WeightPlane + (long)(g.InChannels + g.OutChannels) * TileStride);
    }

    public Conv2dGeometry Geometry { get; }
    public int TilesHigh { get; }
    public int TilesWide { get; }
    public int Tiles { get; }
    /// <summary>Stride between the 36 planes of U: Cout·Cin rounded up to <see cref="Lanes"/>.</summary>
    public long WeightPlane { get; }
    public int ChunkTiles { get; }
    /// <summary>Row stride of V and M: <see cref="ChunkTiles"/> padded against cache-set aliasing.</summary>
    public int TileStride { get; }
    public long WorkspaceFloats { get; }
    public long InputOffset => 36 * WeightPlane;
    public long ProductOffset => InputOffset + 36L * Geometry.InChannels * TileStride;

    private static long RoundUp(long value) => (value + Lanes - 1) / Lanes * Lanes;
}

/// <summary>
/// Winograd F(4x4, 3x3) (Lavin &amp; Gray): Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A per 6x6 input patch d and 3x3 kernel g.
/// The element-wise product summed over input channels becomes 36 independent GEMMs U[e]·V[e]. Transforms run on
/// groups of 16 tiles (or 16 weight pairs) gathered into a [position][lane] block, so each SIMD lane is one tile.
/// Interpolation points 0, ±1, 1/2, −2 (rather than the usual 0, ±1, ±2) keep Bᵀ's coefficients ≤ 2.5 and cut the
/// f32 error 2.5x: with 320 input channels and O(1) outputs the largest error is 2.4e-5 (torch's direct f32: 1.7e-6).
/// </summary>
internal static unsafe class Winograd4x3
{
    private const int Lanes = WinogradLayout.Lanes;

    public static void Run(in WinogradLayout layout, float* x, float* weight, float* bias, float* residual, float* output, float* workspace)
    {
        if (Simd512.IsAccelerated) Run<Simd512>(layout, x, weight, bias, residual, output, workspace);
        else if (Simd256.IsAccelerated) Run<Simd256>(layout, x, weight, bias, residual, output, workspace);
        else if (Simd128.IsAccelerated) Run<Simd128>(layout, x, weight, bias, residual, output, workspace);
        else Run<SimdScalar>(layout, x, weight, bias, residual, output, workspace);
    }

    private static void Run<T>(WinogradLayout layout, float* x, float* weight, float* bias, float* residual, float* output, float* workspace)
        where T : unmanaged, ISimd<T>
    {
        var g = layout.Geometry;
        float* u = workspace;
        float* v = workspace + layout.InputOffset;
        float* m = workspace + layout.ProductOffset;
        long pairs = (long)g.OutChannels * g.InChannels;
        CpuParallel.For(layout.WeightPlane / Lanes, 32, (start, end) =>
        {
            for (long group = start; group < end; group++)
                TransformWeights<T>(weight, pairs, group * Lanes, u, layout.WeightPlane);
        });
        int chunk = layout.ChunkTiles;
        for (int tileStart = 0; tileStart < layout.Tiles; tileStart += chunk)
        {
            int count = Math.Min(chunk, layout.Tiles - tileStart);
            int groups = (count + Lanes - 1) / Lanes;
            int first = tileStart;
            CpuParallel.For((long)g.InChannels * groups, 8, (start, end) =>
            {
                for (long item = start; item < end; item++)
                    TransformInput<T>(layout, x, (int)(item / groups), first, (int)(item % groups) * Lanes, count, v);
            });
            for (int e = 0; e < 36; e++)
                CpuGemm.Sgemm(false, false, g.OutChannels, count, g.InChannels, 1f,
                    u + e * layout.WeightPlane, g.InChannels,
                    v + (long)e * g.InChannels * layout.TileStride, layout.TileStride, 0f,
                    m + (long)e * g.OutChannels * layout.TileStride, layout.TileStride);
            CpuParallel.For((long)g.OutChannels * groups, 8, (start, end) =>
            {
                for (long item = start; item < end; item++)
                    TransformOutput<T>(layout, m, (int)(item / groups), first, (int)(item % groups) * Lanes, count, bias, residual, output);
            });
        }
    }

    /// <summary>U[e][pair] = (G g Gᵀ)[e] for the 16 (out, in) channel pairs from <paramref name="firstPair"/>.</summary>
    private static void TransformWeights<T>(float* weight, long pairs, long firstPair, float* u, long plane) where T : unmanaged, ISimd<T>
    {
        float* block = stackalloc float[9 * Lanes];
        for (int lane = 0; lane < Lanes; lane++)
        {
            long pair = firstPair + lane;
            for (int p = 0; p < 9; p++)
                block[p * Lanes + lane] = pair < pairs ? weight[pair * 9 + p] : 0f;
        }
        T* rows = stackalloc T[18];
        T* t = stackalloc T[6];
        for (int lane = 0; lane < Lanes; lane += T.Count)
        {
            for (int col = 0; col < 3; col++)
                KernelTransform(T.Load(block + col * Lanes + lane), T.Load(block + (3 + col) * Lanes + lane),
                    T.Load(block + (6 + col) * Lanes + lane), rows + col, 3);
            float* dst = u + firstPair + lane;
            for (int a = 0; a < 6; a++)
            {
                KernelTransform(rows[a * 3], rows[a * 3 + 1], rows[a * 3 + 2], t, 1);
                for (int b = 0; b < 6; b++) T.Store(t[b], dst + (a * 6 + b) * plane);
            }
        }
    }

    /// <summary>V[e][channel][tile] = (Bᵀ d B)[e] for 16 tiles of one input channel.</summary>
    private static void TransformInput<T>(in WinogradLayout layout, float* x, int channel, int chunkStart, int groupStart,
        int chunkCount, float* v) where T : unmanaged, ISimd<T>
    {
        var g = layout.Geometry;
        float* patch = stackalloc float[36 * Lanes];
        var tile = new TileCursor(layout, chunkStart + groupStart);
        for (int lane = 0; lane < Lanes; lane++, tile.Next())
        {
            if (groupStart + lane >= chunkCount)
            {
                for (int p = 0; p < 36; p++) patch[p * Lanes + lane] = 0f;
                continue;
            }
            int y0 = tile.Row * 4 - g.Padding;
            int x0 = tile.Column * 4 - g.Padding;
            float* plane = x + ((long)tile.Image * g.InChannels + channel) * g.Height * g.Width;
            // Patch columns [kStart, kEnd) lie inside the image; the rest are padding.
            int kStart = Math.Clamp(-x0, 0, 6), kEnd = Math.Clamp(g.Width - x0, kStart, 6);
            for (int j = 0; j < 6; j++)
            {
                float* dst = patch + j * 6 * Lanes + lane;
                int iy = y0 + j;
                int rowEnd = (uint)iy < (uint)g.Height ? kEnd : kStart;
                float* row = plane + (long)iy * g.Width + x0;
                for (int k = 0; k < kStart; k++) dst[k * Lanes] = 0f;
                for (int k = kStart; k < rowEnd; k++) dst[k * Lanes] = row[k];
                for (int k = rowEnd; k < 6; k++) dst[k * Lanes] = 0f;
            }
        }

        long plane36 = (long)g.InChannels * layout.TileStride;
        T* rows = stackalloc T[36];
        T* t = stackalloc T[6];
        for (int lane = 0; lane < Lanes; lane += T.Count)
        {
            float* src = patch + lane;
            for (int col = 0; col < 6; col++)
                InputTransform(T.Load(src + col * Lanes), T.Load(src + (6 + col) * Lanes), T.Load(src + (12 + col) * Lanes),
                    T.Load(src + (18 + col) * Lanes), T.Load(src + (24 + col) * Lanes), T.Load(src + (30 + col) * Lanes), rows + col, 6);
            float* dst = v + (long)channel * layout.TileStride + groupStart + lane;
            for (int i = 0; i < 6; i++)
            {
                T* r = rows + i * 6;
                InputTransform(r[0], r[1], r[2], r[3], r[4], r[5], t, 1);
                for (int k = 0; k < 6; k++) T.Store(t[k], dst + (i * 6 + k) * plane36);
            }
        }
    }

    /// <summary>Y = Aᵀ M A + bias (+ residual) for 16 tiles of one output channel, written into the NCHW output.</summary>
    private static void TransformOutput<T>(in WinogradLayout layout, float* m, int channel, int chunkStart, int groupStart,
        int chunkCount, float* bias, float* residual, float* output) where T : unmanaged, ISimd<T>
    {
        var g = layout.Geometry;
        long plane36 = (long)g.OutChannels * layout.TileStride;
        float* result = stackalloc float[16 * Lanes];
        T* rows = stackalloc T[24];
        T* t = stackalloc T[4];
        var b = T.Broadcast(bias is null ? 0f : bias[channel]);
        for (int lane = 0; lane < Lanes; lane += T.Count)
        {
            float* src = m + (long)channel * layout.TileStride + groupStart + lane;
            for (int col = 0; col < 6; col++)
                OutputTransform(T.Load(src + col * plane36), T.Load(src + (6 + col) * plane36), T.Load(src + (12 + col) * plane36),
                    T.Load(src + (18 + col) * plane36), T.Load(src + (24 + col) * plane36), T.Load(src + (30 + col) * plane36), rows + col, 6);
            for (int q = 0; q < 4; q++)
            {
                T* r = rows + q * 6;
                OutputTransform(r[0], r[1], r[2], r[3], r[4], r[5], t, 1);
                for (int c = 0; c < 4; c++) T.Store(t[c] + b, result + (q * 4 + c) * Lanes + lane);
            }
        }

        int lanes = Math.Min(Lanes, chunkCount - groupStart);
        var tile = new TileCursor(layout, chunkStart + groupStart);
        for (int lane = 0; lane < lanes; lane++, tile.Next())
        {
            int oy = tile.Row * 4, ox = tile.Column * 4;
            int height = Math.Min(4, g.OutHeight - oy), width = Math.Min(4, g.OutWidth - ox);
            long offset = (((long)tile.Image * g.OutChannels + channel) * g.OutHeight + oy) * g.OutWidth + ox;
            for (int qy = 0; qy < height; qy++)
            {
                float* dst = output + offset + (long)qy * g.OutWidth;
                float* src = result + qy * 4 * Lanes + lane;
                if (residual is null)
                    for (int qx = 0; qx < width; qx++) dst[qx] = src[qx * Lanes];
                else
                {
                    float* res = residual + offset + (long)qy * g.OutWidth;
                    for (int qx = 0; qx < width; qx++) dst[qx] = src[qx * Lanes] + res[qx];
                }
            }
        }
    }

    /// <summary>Walks tiles in numbering order (image, tile row, tile column) with one division up front.</summary>
    private struct TileCursor
    {
        private readonly int _rows, _columns;

        public TileCursor(in WinogradLayout layout, int tile)
        {
            _rows = layout.TilesHigh;
            _columns = layout.TilesWide;
            int perImage = _rows * _columns;
            Image = tile / perImage;
            Row = tile % perImage / _columns;
            Column = tile % _columns;
        }

        public int Image { get; private set; }
        public int Row { get; private set; }
        public int Column { get; private set; }

        public void Next()
        {
            if (++Column < _columns) return;
            Column = 0;
            if (++Row < _rows) return;
            Row = 0;
            Image++;
        }
    }

    /// <summary>G·(g0, g1, g2): the 6 kernel-transform values, written at o[0], o[stride], ...</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void KernelTransform<T>(T g0, T g1, T g2, T* o, int stride) where T : unmanaged, ISimd<T>
    {
        o[0] = g0;
        o[stride] = (g1 - g0 - g2) * (1f / 3);
        o[2 * stride] = (g0 + g1 + g2) * (1f / 3);
        o[3 * stride] = (g0 * 16f + g1 * 8f + g2 * 4f) * (-1f / 15);
        o[4 * stride] = (g0 - g1 * 2f + g2 * 4f) * (1f / 15);
        o[5 * stride] = g2;
    }

    /// <summary>Bᵀ·(d0..d5), written at o[0], o[stride], ...</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputTransform<T>(T d0, T d1, T d2, T d3, T d4, T d5, T* o, int stride) where T : unmanaged, ISimd<T>
    {
        var d42 = d4 - d2;
        var d31 = d3 - d1;
        o[0] = d0 - d2 * 2f + d4 + d31 * 1.5f;
        o[stride] = d4 + d1 - d2 * 2.5f + d3 * 0.5f;
        o[2 * stride] = d4 - d1 + d2 * 0.5f + d3 * 2.5f;
        o[3 * stride] = d42 + d31 * 2f;
        o[4 * stride] = d42 - d31 * 0.5f;
        o[5 * stride] = d5 + d1 - d3 * 2f + d42 * 1.5f;
    }

    /// <summary>Aᵀ·(m0..m5), written at o[0], o[stride], o[2·stride], o[3·stride].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTransform<T>(T m0, T m1, T m2, T m3, T m4, T m5, T* o, int stride) where T : unmanaged, ISimd<T>
    {
        var sum = m2 + m1;
        var diff = m2 - m1;
        o[0] = m0 + sum + m3 + m4;
        o[stride] = diff + m3 * 0.5f - m4 * 2f;
        o[2 * stride] = sum + m3 * 0.25f + m4 * 4f;
        o[3 * stride] = diff + m3 * 0.125f - m4 * 8f + m5;
    }
}
