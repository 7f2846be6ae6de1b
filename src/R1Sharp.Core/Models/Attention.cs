// Causal attention over a KV cache: for every (token, head), softmax(scale · q·k_p) over the positions 0..pos of
// the token's slot, then the weighted sum of v_p. Layouts are given by strides, so the same kernels run GQA
// (llama, qwen2), MHA and the absorbed MLA form where one latent row serves as both key and value. Query heads that
// share a KV head go together (head tiles, at 512 bits): each key and value row is read once for all of them. Rows
// of an F16 or Q8_0 cache are widened (dequantized) to F32 a block of positions at a time, once for every head that
// reads them.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

internal unsafe struct AttentionJob
{
    /// <summary>Query of (token t, head h) at Q + t·QTokenStride + h·QHeadStride, HeadDim values.</summary>
    public float* Q;
    public long QTokenStride;
    public int QHeadStride;
    /// <summary>Output of (t, h) at Out + t·OutTokenStride + h·OutHeadStride, ValueDim values.</summary>
    public float* Out;
    public long OutTokenStride;
    public int OutHeadStride;
    /// <summary>
    /// Key of position p of KV head g in slot s at value s·KSlotStride + p·KRowStride + g·KHeadStride from K (strides
    /// count values of <see cref="KType"/>; for Q8_0 they are whole blocks of 32).
    /// </summary>
    public byte* K;
    public long KSlotStride;
    public int KRowStride;
    public long KHeadStride;
    /// <summary>Value rows, laid out like the keys.</summary>
    public byte* V;
    public long VSlotStride;
    public int VRowStride;
    public long VHeadStride;
    public int* Positions;
    public int* Slots;
    /// <summary>How the cache stores K: F32, F16 or Q8_0.</summary>
    public GgmlType KType;
    /// <summary>How the cache stores V.</summary>
    public GgmlType VType;
    /// <summary>Set by <see cref="Attention.Run(ComputePool, ref AttentionJob, int, bool)"/>: group g of tokens (of one slot) is TokenGroups[g]..TokenGroups[g + 1].</summary>
    public int* TokenGroups;
    public int Heads;
    /// <summary>Query heads per KV head.</summary>
    public int GqaRatio;
    public int HeadDim;
    public int ValueDim;
    public float Scale;
}

internal static unsafe class Attention
{
    public static void Run(ComputePool pool, ref AttentionJob job, int nTokens) => Run(pool, ref job, nTokens, Tiled(job));

    /// <summary>With <paramref name="tiled"/> false, every head on its own (the reference of the tiled kernels in tests).</summary>
    internal static void Run(ComputePool pool, ref AttentionJob job, int nTokens, bool tiled)
    {
        if (!tiled)
        {
            fixed (AttentionJob* j = &job) pool.Run(nTokens * job.Heads, &AttendHeads, j);
            return;
        }
        // consecutive tokens of one slot go together (up to MaxGroupTokens) where the cache's rows are widened, so that
        // a block is widened once for all of them (a prefill's tokens share every row before them)
        int maxGroup = job.KType != GgmlType.F32 || job.VType != GgmlType.F32 ? MaxGroupTokens : 1;
        var starts = t_tokenGroups is { } a && a.Length > nTokens ? a : (t_tokenGroups = GC.AllocateUninitializedArray<int>(Math.Max(nTokens + 1, 64), pinned: true));
        int count = 0;
        for (int t = 0; t < nTokens; t++)
        {
            if (count == 0 || job.Slots[t] != job.Slots[starts[count - 1]] || t - starts[count - 1] == maxGroup) starts[count++] = t;
        }
        starts[count] = nTokens;
        fixed (int* groups = starts)
        fixed (AttentionJob* j = &job)
        {
            j->TokenGroups = groups;
            pool.Run(count * (job.Heads / job.GqaRatio) * TilesPerGroup(job.GqaRatio), &AttendTiles, j);
            j->TokenGroups = null;
        }
    }

    /// <summary>Tokens of one slot that share each widened block of an F16 or Q8_0 cache's rows.</summary>
    private const int MaxGroupTokens = 8;

    [ThreadStatic] private static int[]? t_tokenGroups;

    /// <summary>Whether the head-tiled kernels run this job (512-bit vectors, dimensions in whole vectors, shared KV heads).</summary>
    internal static bool Tiled(in AttentionJob j) =>
        Avx512F.IsSupported && j.HeadDim % 16 == 0 && j.ValueDim % 16 == 0 && j.GqaRatio > 1 && j.Heads % j.GqaRatio == 0;

    // ---- head tiles: up to 8 query heads of one KV head together, so each key and value row is read from memory once
    // for all of them (the positions go in blocks, widened to F32 into a buffer that stays in cache while the heads pass
    // over it, 4 or 2 at a time), and the dots of 16 (head, position) pairs are summed across lanes together ----

    private const int MaxTileHeads = 8, PositionBlock = 64;

    /// <summary>Tiles of one KV head's <paramref name="ratio"/> query heads (each of at most 8 heads, of near-equal sizes).</summary>
    internal static int TilesPerGroup(int ratio) => (ratio + MaxTileHeads - 1) / MaxTileHeads;

    [ThreadStatic] private static float[]? t_tileScores;
    [ThreadStatic] private static float[]? t_block;

    /// <summary>Positions ahead whose key and value rows the tiled kernels prefetch (a few percent at a 2048-token depth).</summary>
    private const int PrefetchRows = 16;

    /// <summary>A buffer for one block of positions' key or value rows in F32.</summary>
    private static float[] BlockBuffer(in AttentionJob j)
    {
        int size = PositionBlock * Math.Max(j.HeadDim, j.ValueDim);
        return t_block is { } b && b.Length >= size ? b : (t_block = GC.AllocateUninitializedArray<float>(size, pinned: true));
    }

    /// <summary>The cache value at <paramref name="index"/> from <paramref name="block"/> (Q8_0: the start of a block).</summary>
    private static byte* At(GgmlType type, byte* block, long index) => block + GgmlTypeInfo.RowBytes(type, index);

    /// <summary>
    /// Rows p0..p0+rows of <paramref name="dim"/> values, <paramref name="stride"/> values apart from
    /// <paramref name="block"/>, as F32: in place in an F32 cache (<paramref name="rowStride"/> = stride), else widened
    /// (exact) into <paramref name="buffer"/> side by side (<paramref name="rowStride"/> = dim). With
    /// <paramref name="fold"/>, an F16 cache's rows may come as each value times 2^-112 (<see cref="WidenUnscaled"/>), and
    /// <paramref name="scale"/> is then 2^112, the factor the other operand of every product with them must carry; else 1.
    /// </summary>
    private static float* Rows(GgmlType type, byte* block, int p0, int rows, int stride, int dim, float* buffer, out int rowStride, bool fold, out float scale)
    {
        byte* src = At(type, block, (long)p0 * stride);
        scale = 1;
        if (type == GgmlType.F32)
        {
            rowStride = stride;
            return (float*)src;
        }
        rowStride = dim;
        if (type == GgmlType.Q8_0)
        {
            // rows of whole blocks, each dequantized as the weights' kernel does (exact: d · q in F32)
            var dequantize = KernelTable.Default[GgmlType.Q8_0].DequantizeRow;
            if (stride == dim) dequantize(src, buffer, rows * dim);
            else for (int r = 0; r < rows; r++) dequantize(src + GgmlTypeInfo.RowBytes(type, (long)r * stride), buffer + r * dim, dim);
            return buffer;
        }
        if (fold && Avx512F.IsSupported && dim % 16 == 0)
        {
            bool finite = true;
            if (stride == dim) finite = WidenUnscaled((Half*)src, buffer, rows * dim);
            else for (int r = 0; r < rows; r++) finite &= WidenUnscaled((Half*)src + (long)r * stride, buffer + r * dim, dim);
            if (finite)
            {
                scale = Pow2_112;
                return buffer;
            }
        }
        if (stride == dim) Widen((Half*)src, buffer, rows * dim);
        else for (int r = 0; r < rows; r++) Widen((Half*)src + (long)r * stride, buffer + r * dim, dim);
        return buffer;
    }

    /// <summary>2^112: a half's value over the float whose sign, exponent and mantissa fields hold the half's (see <see cref="WidenUnscaled"/>).</summary>
    private static readonly float Pow2_112 = BitConverter.Int32BitsToSingle(0x77800000);

    /// <summary>
    /// <paramref name="count"/> (a multiple of 16) halves h to the floats h · 2^-112, exactly, in two integer operations
    /// per 16: the sign-extended half shifted left 13 puts its exponent and mantissa where a float's go and copies of
    /// its sign above them, of which the mask keeps the top one; a half exponent e then reads as the float exponent
    /// e − 127 instead of e − 15, and half subnormals are float subnormals of the same digits. Products with an operand
    /// carrying 2^112 are then exactly the products with h (a power of two moves no digits), so the kernels' sums are
    /// the exact widening's bit for bit, without its rescale and Inf/NaN select. False if any half is Inf or NaN (which
    /// this form cannot hold): the caller widens them exactly instead.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool WidenUnscaled(Half* src, float* dst, int count)
    {
        var mask = Vector512.Create(unchecked((int)0x8FFFFFFF));
        Vector512<uint> top = default;
        for (int i = 0; i < count; i += 16)
        {
            Vector512<int> t = (Avx512F.ConvertToVector512Int32(Vector256.Load((short*)src + i)) << 13) & mask;
            t.AsSingle().Store(dst + i);
            top = Vector512.Max(top, t.AsUInt32() << 1); // the sign shifted out: Inf and NaN are the values from 0x1F000000 on
        }
        return Vector512.LessThanAll(top, Vector512.Create(0x1F000000u));
    }

    /// <summary>
    /// <paramref name="count"/> halves to floats, exactly: 16 at a time with <see cref="HalfConvert.F16ToF32(Vector512{int})"/>
    /// (a few integer operations) where 512-bit vectors are hardware.
    /// </summary>
    private static void Widen(Half* src, float* dst, int count)
    {
        int i = 0;
        if (Avx512F.IsSupported)
        {
            for (; i + 16 <= count; i += 16)
                HalfConvert.F16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)src + i)).AsInt32()).Store(dst + i);
        }
        if (i < count) TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src + i, count - i), new Span<float>(dst + i, count - i));
    }

    /// <summary>
    /// One (group of tokens of a slot, KV head, tile of its query heads) per work item: each block of key and value rows
    /// serves every token of the group whose context reaches it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendTiles(int start, int end, void* ctx)
    {
        ref AttentionJob j = ref *(AttentionJob*)ctx;
        int groups = j.Heads / j.GqaRatio, tiles = TilesPerGroup(j.GqaRatio);
        for (int w = start; w < end; w++)
        {
            int tg = w / (groups * tiles), g = w / tiles % groups, i = w % tiles;
            int first = i * j.GqaRatio / tiles, count = (i + 1) * j.GqaRatio / tiles - first;
            int h0 = g * j.GqaRatio + first;
            int t0 = j.TokenGroups[tg], tokens = j.TokenGroups[tg + 1] - t0;
            int len = 0;
            for (int u = 0; u < tokens; u++) len = Math.Max(len, j.Positions[t0 + u] + 1);
            int stride = (len + 15) & ~15, rows = tokens * count; // score row u·count + h: token t0 + u, head h0 + h
            var buffer = t_tileScores is { } b && b.Length >= rows * stride ? b : (t_tileScores = new float[Math.Max(rows * stride, 8192)]);
            // an F16 cache's key rows come as h · 2^-112 (Rows) where the tile's queries times 2^112 stay finite
            bool foldK = j.KType == GgmlType.F16 && ScaledQueries(j, t0, tokens, h0, count);
            fixed (float* scores = buffer, block = BlockBuffer(j), qScaled = t_qScaled)
            {
                int slot = j.Slots[t0];
                byte* k = At(j.KType, j.K, slot * j.KSlotStride + g * j.KHeadStride);
                byte* v = At(j.VType, j.V, slot * j.VSlotStride + g * j.VHeadStride);
                for (int p0 = 0; p0 < len; p0 += PositionBlock)
                {
                    float* kb = Rows(j.KType, k, p0, Math.Min(PositionBlock, len - p0), j.KRowStride, j.HeadDim, block, out int ks, foldK, out float kScale);
                    int qStride = kScale == 1 ? j.QHeadStride : j.HeadDim;
                    for (int u = 0; u < tokens; u++)
                    {
                        int m = Math.Min(PositionBlock, j.Positions[t0 + u] + 1 - p0);
                        float* q = kScale == 1 ? j.Q + (t0 + u) * j.QTokenStride + h0 * j.QHeadStride : qScaled + u * count * j.HeadDim;
                        for (int h = 0, n; h < count && m > 0; h += n)
                        {
                            n = count - h >= 4 ? 4 : count - h >= 2 ? 2 : 1;
                            float* qh = q + h * qStride, sh = scores + (u * count + h) * stride + p0;
                            if (n == 4) Scores4(qh, qStride, kb, ks, m, j.HeadDim, j.Scale, sh, stride);
                            else if (n == 2) Scores2(qh, qStride, kb, ks, m, j.HeadDim, j.Scale, sh, stride);
                            else Scores1(qh, kb, ks, m, j.HeadDim, j.Scale, sh);
                        }
                    }
                }
                for (int u = 0; u < tokens; u++)
                {
                    float* o = j.Out + (t0 + u) * j.OutTokenStride + h0 * j.OutHeadStride;
                    for (int h = 0; h < count; h++)
                    {
                        var sp = new Span<float>(scores + (u * count + h) * stride, j.Positions[t0 + u] + 1);
                        Softmax(sp, TensorPrimitives.Max(sp));
                        new Span<float>(o + h * j.OutHeadStride, j.ValueDim).Clear();
                    }
                }
                for (int p0 = 0; p0 < len; p0 += PositionBlock)
                {
                    // an F16 cache's value rows as h · 2^-112: the weights (at most 1) carry 2^112 instead, each block's once
                    float* vb = Rows(j.VType, v, p0, Math.Min(PositionBlock, len - p0), j.VRowStride, j.ValueDim, block, out int vs, true, out float vScale);
                    for (int u = 0; u < tokens; u++)
                    {
                        int m = Math.Min(PositionBlock, j.Positions[t0 + u] + 1 - p0);
                        float* o = j.Out + (t0 + u) * j.OutTokenStride + h0 * j.OutHeadStride;
                        for (int h = 0; h < count && m > 0 && vScale != 1; h++)
                        {
                            var wh = new Span<float>(scores + (u * count + h) * stride + p0, m);
                            TensorPrimitives.Multiply(wh, vScale, wh);
                        }
                        for (int h = 0, n; h < count && m > 0; h += n)
                        {
                            n = count - h >= 4 ? 4 : count - h >= 2 ? 2 : 1;
                            float* sh = scores + (u * count + h) * stride + p0, oh = o + h * j.OutHeadStride;
                            if (n == 4) WeightedSum4(sh, stride, m, vb, vs, oh, j.OutHeadStride, j.ValueDim);
                            else if (n == 2) WeightedSum2(sh, stride, m, vb, vs, oh, j.OutHeadStride, j.ValueDim);
                            else WeightedSum(new ReadOnlySpan<float>(sh, m), vb, vs, new Span<float>(oh, j.ValueDim));
                        }
                    }
                }
            }
        }
    }

    [ThreadStatic] private static float[]? t_qScaled;

    /// <summary>
    /// Into <see cref="t_qScaled"/> (token u's head h at (u·count + h)·HeadDim): the queries of heads h0..h0+count of
    /// tokens t0..t0+tokens times 2^112, if every one stays finite (all |q| &lt; 2^16; else false).
    /// </summary>
    private static bool ScaledQueries(in AttentionJob j, int t0, int tokens, int h0, int count)
    {
        int size = tokens * count * j.HeadDim;
        var buffer = t_qScaled is { } b && b.Length >= size ? b : (t_qScaled = GC.AllocateUninitializedArray<float>(Math.Max(size, 4096), pinned: true));
        for (int u = 0; u < tokens; u++)
        {
            for (int h = 0; h < count; h++)
            {
                var q = new ReadOnlySpan<float>(j.Q + (t0 + u) * j.QTokenStride + (h0 + h) * j.QHeadStride, j.HeadDim);
                if (!(TensorPrimitives.MaxMagnitude(q) < 65536f)) return false;
                TensorPrimitives.Multiply(q, Pow2_112, buffer.AsSpan((u * count + h) * j.HeadDim, j.HeadDim));
            }
        }
        return true;
    }

    /// <summary>scores[p] = scale · q·k_p for one head, positions p &lt; len.</summary>
    private static void Scores1(float* q, float* k, int kStride, int len, int dim, float scale, float* scores)
    {
        var qs = new ReadOnlySpan<float>(q, dim);
        for (int p = 0; p < len; p++) scores[p] = Dot(qs, k + (long)p * kStride) * scale;
    }

    /// <summary>
    /// Lane i of the result is the sum of the 16 lanes of vector i: within 128-bit lanes by two rounds of unpacks and
    /// adds, then across them by a 4×4 transpose of 128-bit lanes (45 instructions for 16 sums; one at a time, a sum
    /// takes about 8).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Sum16(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7,
        Vector512<float> a8, Vector512<float> a9, Vector512<float> a10, Vector512<float> a11,
        Vector512<float> a12, Vector512<float> a13, Vector512<float> a14, Vector512<float> a15)
    {
        Vector512<float> c0 = Sum4InLanes(a0, a1, a2, a3), c1 = Sum4InLanes(a4, a5, a6, a7);
        Vector512<float> c2 = Sum4InLanes(a8, a9, a10, a11), c3 = Sum4InLanes(a12, a13, a14, a15);
        Vector512<float> ab = Avx512F.Shuffle4x128(c0, c1, 0b10_00_10_00) + Avx512F.Shuffle4x128(c0, c1, 0b11_01_11_01);
        Vector512<float> cd = Avx512F.Shuffle4x128(c2, c3, 0b10_00_10_00) + Avx512F.Shuffle4x128(c2, c3, 0b11_01_11_01);
        return Avx512F.Shuffle4x128(ab, cd, 0b10_00_10_00) + Avx512F.Shuffle4x128(ab, cd, 0b11_01_11_01);
    }

    /// <summary>Element i of each 128-bit lane: the sum of vector i's four elements in that lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Sum4InLanes(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        Vector512<double> ab = (Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b)).AsDouble();
        Vector512<double> cd = (Avx512F.UnpackLow(c, d) + Avx512F.UnpackHigh(c, d)).AsDouble();
        return (Avx512F.UnpackLow(ab, cd).AsSingle() + Avx512F.UnpackHigh(ab, cd).AsSingle());
    }

    /// <summary>
    /// scores[h * stride + p] = scale · q_h·k_p for 4 heads (q_h at q + h·qStride) and positions p &lt; len, 4 positions
    /// at a time: each key chunk is loaded once for the 4 heads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores4(float* q, int qStride, float* k, int kStride, int len, int dim, float scale, float* scores, int stride)
    {
        float* q1 = q + qStride, q2 = q1 + qStride, q3 = q2 + qStride;
        var vs = Vector512.Create(scale);
        int p = 0;
        for (; p + 4 <= len; p += 4)
        {
            float* k0 = k + (long)p * kStride;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
            for (int c = 0; c < dim; c += 16)
            {
                Rows4(k0, kStride, c, out var x0, out var x1, out var x2, out var x3);
                Vector512<float> h = Vector512.Load(q + c);
                a0 = Vector512.FusedMultiplyAdd(h, x0, a0); a1 = Vector512.FusedMultiplyAdd(h, x1, a1);
                a2 = Vector512.FusedMultiplyAdd(h, x2, a2); a3 = Vector512.FusedMultiplyAdd(h, x3, a3);
                h = Vector512.Load(q1 + c);
                a4 = Vector512.FusedMultiplyAdd(h, x0, a4); a5 = Vector512.FusedMultiplyAdd(h, x1, a5);
                a6 = Vector512.FusedMultiplyAdd(h, x2, a6); a7 = Vector512.FusedMultiplyAdd(h, x3, a7);
                h = Vector512.Load(q2 + c);
                a8 = Vector512.FusedMultiplyAdd(h, x0, a8); a9 = Vector512.FusedMultiplyAdd(h, x1, a9);
                a10 = Vector512.FusedMultiplyAdd(h, x2, a10); a11 = Vector512.FusedMultiplyAdd(h, x3, a11);
                h = Vector512.Load(q3 + c);
                a12 = Vector512.FusedMultiplyAdd(h, x0, a12); a13 = Vector512.FusedMultiplyAdd(h, x1, a13);
                a14 = Vector512.FusedMultiplyAdd(h, x2, a14); a15 = Vector512.FusedMultiplyAdd(h, x3, a15);
            }
            // lane 4h + i: head h, position p + i
            Vector512<float> r = Sum16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15) * vs;
            r.GetLower().GetLower().Store(scores + p);
            r.GetLower().GetUpper().Store(scores + stride + p);
            r.GetUpper().GetLower().Store(scores + 2 * stride + p);
            r.GetUpper().GetUpper().Store(scores + 3 * stride + p);
        }
        for (int h = 0; h < 4; h++) Scores1(q + h * qStride, k + (long)p * kStride, kStride, len - p, dim, scale, scores + h * stride + p);
    }

    /// <summary>As <see cref="Scores4"/> for 2 heads, 8 positions at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores2(float* q, int qStride, float* k, int kStride, int len, int dim, float scale, float* scores, int stride)
    {
        float* q1 = q + qStride;
        var vs = Vector512.Create(scale);
        int p = 0;
        for (; p + 8 <= len; p += 8)
        {
            float* k0 = k + (long)p * kStride;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
            for (int c = 0; c < dim; c += 16)
            {
                Rows4(k0, kStride, c, out var x0, out var x1, out var x2, out var x3);
                Rows4(k0 + 4 * kStride, kStride, c, out var x4, out var x5, out var x6, out var x7);
                Vector512<float> h0 = Vector512.Load(q + c), h1 = Vector512.Load(q1 + c);
                a0 = Vector512.FusedMultiplyAdd(h0, x0, a0); a8 = Vector512.FusedMultiplyAdd(h1, x0, a8);
                a1 = Vector512.FusedMultiplyAdd(h0, x1, a1); a9 = Vector512.FusedMultiplyAdd(h1, x1, a9);
                a2 = Vector512.FusedMultiplyAdd(h0, x2, a2); a10 = Vector512.FusedMultiplyAdd(h1, x2, a10);
                a3 = Vector512.FusedMultiplyAdd(h0, x3, a3); a11 = Vector512.FusedMultiplyAdd(h1, x3, a11);
                a4 = Vector512.FusedMultiplyAdd(h0, x4, a4); a12 = Vector512.FusedMultiplyAdd(h1, x4, a12);
                a5 = Vector512.FusedMultiplyAdd(h0, x5, a5); a13 = Vector512.FusedMultiplyAdd(h1, x5, a13);
                a6 = Vector512.FusedMultiplyAdd(h0, x6, a6); a14 = Vector512.FusedMultiplyAdd(h1, x6, a14);
                a7 = Vector512.FusedMultiplyAdd(h0, x7, a7); a15 = Vector512.FusedMultiplyAdd(h1, x7, a15);
            }
            // lane 8h + i: head h, position p + i
            Vector512<float> r = Sum16(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15) * vs;
            r.GetLower().Store(scores + p);
            r.GetUpper().Store(scores + stride + p);
        }
        for (int h = 0; h < 2; h++) Scores1(q + h * qStride, k + (long)p * kStride, kStride, len - p, dim, scale, scores + h * stride + p);
    }

    /// <summary>o_h += Σ_p w_h[p] · v_p for 4 heads (w_h at w + h·stride, o_h at o + h·oStride), each value row read once for the 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightedSum4(float* w, int stride, int len, float* v, int vStride, float* o, int oStride, int dim)
    {
        float* o1 = o + oStride, o2 = o1 + oStride, o3 = o2 + oStride;
        float* w1 = w + stride, w2 = w1 + stride, w3 = w2 + stride;
        int p = 0;
        for (; p + 2 <= len; p += 2)
        {
            float* v0 = v + (long)p * vStride, v1 = v0 + vStride;
            Vector512<float> b00 = Vector512.Create(w[p]), b01 = Vector512.Create(w[p + 1]), b10 = Vector512.Create(w1[p]), b11 = Vector512.Create(w1[p + 1]);
            Vector512<float> b20 = Vector512.Create(w2[p]), b21 = Vector512.Create(w2[p + 1]), b30 = Vector512.Create(w3[p]), b31 = Vector512.Create(w3[p + 1]);
            for (int d = 0; d < dim; d += 16)
            {
                Sse.Prefetch0(v0 + PrefetchRows * vStride + d);
                Sse.Prefetch0(v1 + PrefetchRows * vStride + d);
                Vector512<float> x0 = Vector512.Load(v0 + d), x1 = Vector512.Load(v1 + d);
                Vector512.FusedMultiplyAdd(x1, b01, Vector512.FusedMultiplyAdd(x0, b00, Vector512.Load(o + d))).Store(o + d);
                Vector512.FusedMultiplyAdd(x1, b11, Vector512.FusedMultiplyAdd(x0, b10, Vector512.Load(o1 + d))).Store(o1 + d);
                Vector512.FusedMultiplyAdd(x1, b21, Vector512.FusedMultiplyAdd(x0, b20, Vector512.Load(o2 + d))).Store(o2 + d);
                Vector512.FusedMultiplyAdd(x1, b31, Vector512.FusedMultiplyAdd(x0, b30, Vector512.Load(o3 + d))).Store(o3 + d);
            }
        }
        for (; p < len; p++)
        {
            float* vp = v + (long)p * vStride;
            Vector512<float> b0 = Vector512.Create(w[p]), b1 = Vector512.Create(w1[p]), b2 = Vector512.Create(w2[p]), b3 = Vector512.Create(w3[p]);
            for (int d = 0; d < dim; d += 16)
            {
                Vector512<float> x = Vector512.Load(vp + d);
                Vector512.FusedMultiplyAdd(x, b0, Vector512.Load(o + d)).Store(o + d);
                Vector512.FusedMultiplyAdd(x, b1, Vector512.Load(o1 + d)).Store(o1 + d);
                Vector512.FusedMultiplyAdd(x, b2, Vector512.Load(o2 + d)).Store(o2 + d);
                Vector512.FusedMultiplyAdd(x, b3, Vector512.Load(o3 + d)).Store(o3 + d);
            }
        }
    }

    /// <summary>As <see cref="WeightedSum4"/> for 2 heads, 4 positions per pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightedSum2(float* w, int stride, int len, float* v, int vStride, float* o, int oStride, int dim)
    {
        float* o1 = o + oStride;
        float* w1 = w + stride;
        int p = 0;
        for (; p + 4 <= len; p += 4)
        {
            float* v0 = v + (long)p * vStride;
            Vector512<float> b00 = Vector512.Create(w[p]), b01 = Vector512.Create(w[p + 1]), b02 = Vector512.Create(w[p + 2]), b03 = Vector512.Create(w[p + 3]);
            Vector512<float> b10 = Vector512.Create(w1[p]), b11 = Vector512.Create(w1[p + 1]), b12 = Vector512.Create(w1[p + 2]), b13 = Vector512.Create(w1[p + 3]);
            for (int d = 0; d < dim; d += 16)
            {
                Rows4(v0, vStride, d, out var x0, out var x1, out var x2, out var x3);
                Vector512<float> acc = Vector512.FusedMultiplyAdd(x0, b00, Vector512.Load(o + d));
                acc = Vector512.FusedMultiplyAdd(x1, b01, acc);
                acc = Vector512.FusedMultiplyAdd(x2, b02, acc);
                Vector512.FusedMultiplyAdd(x3, b03, acc).Store(o + d);
                acc = Vector512.FusedMultiplyAdd(x0, b10, Vector512.Load(o1 + d));
                acc = Vector512.FusedMultiplyAdd(x1, b11, acc);
                acc = Vector512.FusedMultiplyAdd(x2, b12, acc);
                Vector512.FusedMultiplyAdd(x3, b13, acc).Store(o1 + d);
            }
        }
        for (; p < len; p++)
        {
            float* vp = v + (long)p * vStride;
            Vector512<float> b0 = Vector512.Create(w[p]), b1 = Vector512.Create(w1[p]);
            for (int d = 0; d < dim; d += 16)
            {
                Vector512<float> x = Vector512.Load(vp + d);
                Vector512.FusedMultiplyAdd(x, b0, Vector512.Load(o + d)).Store(o + d);
                Vector512.FusedMultiplyAdd(x, b1, Vector512.Load(o1 + d)).Store(o1 + d);
            }
        }
    }

    /// <summary>Values c..c+15 of 4 rows <paramref name="stride"/> floats apart, prefetching the same values <see cref="PrefetchRows"/> rows on.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rows4(float* r, int stride, int c, out Vector512<float> x0, out Vector512<float> x1, out Vector512<float> x2, out Vector512<float> x3)
    {
        float* ahead = r + PrefetchRows * stride + c;
        Sse.Prefetch0(ahead);
        Sse.Prefetch0(ahead + stride);
        Sse.Prefetch0(ahead + 2 * stride);
        Sse.Prefetch0(ahead + 3 * stride);
        x0 = Vector512.Load(r + c);
        x1 = Vector512.Load(r + stride + c);
        x2 = Vector512.Load(r + 2 * stride + c);
        x3 = Vector512.Load(r + 3 * stride + c);
    }

    /// <summary>In place: exp(s − max) normalized; the sum in double, as ggml.</summary>
    private static void Softmax(Span<float> sp, float max)
    {
        TensorPrimitives.Subtract(sp, max, sp);
        TensorPrimitives.Exp(sp, sp);
        double sum = 0;
        foreach (float e in sp) sum += e;
        TensorPrimitives.Multiply(sp, (float)(1.0 / sum), sp);
    }

    [ThreadStatic] private static float[]? t_scores;

    /// <summary>One (token, head) pair per work item.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendHeads(int start, int end, void* ctx)
    {
        ref AttentionJob j = ref *(AttentionJob*)ctx;
        for (int w = start; w < end; w++) AttendHead(ref j, w / j.Heads, w % j.Heads);
    }

    /// <summary>Token t, head h alone: softmax as ggml, max subtracted, sum in double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttendHead(ref AttentionJob j, int t, int h)
    {
        int g = h / j.GqaRatio;
        int pos = j.Positions[t], slot = j.Slots[t];
        int len = pos + 1;
        var scores = t_scores is { } s && s.Length >= len ? s : (t_scores = new float[Math.Max(len, 1024)]);
        byte* k = At(j.KType, j.K, slot * j.KSlotStride + g * j.KHeadStride);
        byte* v = At(j.VType, j.V, slot * j.VSlotStride + g * j.VHeadStride);
        var o = new Span<float>(j.Out + t * j.OutTokenStride + h * j.OutHeadStride, j.ValueDim);
        fixed (float* ps = scores, block = BlockBuffer(j))
        {
            for (int p0 = 0; p0 < len; p0 += PositionBlock)
            {
                int m = Math.Min(PositionBlock, len - p0);
                float* kb = Rows(j.KType, k, p0, m, j.KRowStride, j.HeadDim, block, out int ks, false, out _);
                Scores1(j.Q + t * j.QTokenStride + h * j.QHeadStride, kb, ks, m, j.HeadDim, j.Scale, ps + p0);
            }
            var sp = scores.AsSpan(0, len);
            Softmax(sp, TensorPrimitives.Max(sp));
            o.Clear();
            for (int p0 = 0; p0 < len; p0 += PositionBlock)
            {
                int m = Math.Min(PositionBlock, len - p0);
                float* vb = Rows(j.VType, v, p0, m, j.VRowStride, j.ValueDim, block, out int vs, false, out _);
                WeightedSum(sp.Slice(p0, m), vb, vs, o);
            }
        }
    }

    /// <summary>q·k over q.Length values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(ReadOnlySpan<float> q, float* k)
    {
        if (!Vector512.IsHardwareAccelerated || q.Length % 32 != 0) return TensorPrimitives.Dot(q, new ReadOnlySpan<float>(k, q.Length));
        fixed (float* pq = q)
        {
            Vector512<float> a0 = default, a1 = default;
            for (int d = 0; d < q.Length; d += 32)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(pq + d), Vector512.Load(k + d), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(pq + d + 16), Vector512.Load(k + d + 16), a1);
            }
            return Vector512.Sum(a0 + a1);
        }
    }

    /// <summary>o += Σ_p w[p] · v_p, v_p at v + p·stride; 4 positions per pass over o.</summary>
    private static void WeightedSum(ReadOnlySpan<float> w, float* v, int stride, Span<float> o)
    {
        int len = w.Length, dim = o.Length;
        if (!Vector512.IsHardwareAccelerated || dim % 16 != 0)
        {
            for (int p = 0; p < len; p++) TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)p * stride, dim), w[p], o, o);
            return;
        }
        fixed (float* po = o)
        {
            int p = 0;
            for (; p + 4 <= len; p += 4)
            {
                float* v0 = v + (long)p * stride, v1 = v0 + stride, v2 = v1 + stride, v3 = v2 + stride;
                Vector512<float> w0 = Vector512.Create(w[p]), w1 = Vector512.Create(w[p + 1]), w2 = Vector512.Create(w[p + 2]), w3 = Vector512.Create(w[p + 3]);
                for (int d = 0; d < dim; d += 16)
                {
                    Vector512<float> acc = Vector512.FusedMultiplyAdd(Vector512.Load(v0 + d), w0, Vector512.Load(po + d));
                    acc = Vector512.FusedMultiplyAdd(Vector512.Load(v1 + d), w1, acc);
                    acc = Vector512.FusedMultiplyAdd(Vector512.Load(v2 + d), w2, acc);
                    Vector512.FusedMultiplyAdd(Vector512.Load(v3 + d), w3, acc).Store(po + d);
                }
            }
            for (; p < len; p++)
            {
                float* vp = v + (long)p * stride;
                var wp = Vector512.Create(w[p]);
                for (int d = 0; d < dim; d += 16) Vector512.FusedMultiplyAdd(Vector512.Load(vp + d), wp, Vector512.Load(po + d)).Store(po + d);
            }
        }
    }
}
