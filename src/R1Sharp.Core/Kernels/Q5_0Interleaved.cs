// Q5_0 rows interleaved in groups of 8 (made once at load, in place: the same bytes as the 8 rows' blocks): the decode
// layout of the rows that llama.cpp's K-quant mixes leave in Q5_0 (DeepSeek-V2-Lite's 1408-wide expert down matrices,
// a third of what its decode reads). Block b of 8 rows becomes one 176-byte block holding the 8 rows' d, fifth bits and
// nibbles side by side, so that 4 activation bytes broadcast meet 8 rows in one vpmaddubsw whose int32 pairs are the
// rows, and the rows' scales apply lane-wise: no per-row unpacking shuffles, gathers or horizontal sums. The fifth bits
// are stored as 8 bit planes (bit k of byte 4r + i is the fifth bit of value 4k + i of row r), so one shift and one
// mask put a chunk's bits on 0x10. The activations are LegacyBlockDot's (Q8_0 blocks, then d_y and Σy per block); each
// row's block sum Σ (q − 16)·y = Σ q·y − 16·Σy is one exact integer, scaled by d_w·d_y as ggml's vec_dot_q5_0_q8_0
// does: no offset term to cancel in floats (the single-row dot's Σ d_w·d_y·Σ q·y − 16·Σ d_w·d_y·Σy loses a few bits
// where the two are large and close). The native layout is ggml's block_q5_0; tests hold the interleaved dot to the dot of the
// dequantized rows and Deinterleave to the inverse of Interleave.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static unsafe class Q5_0Interleaved
{
    /// <summary>Rows per interleaved group: one per int32 lane of a 256-bit vector.</summary>
    public const int Rows = 8;

    /// <summary>Tokens per call of <see cref="Dot(byte*, byte*, long, int, int, float*, long)"/>: each unpacked block meets 8 tokens.</summary>
    public const int Tokens = 8;

    /// <summary>Every batch reads the interleaved rows (prefill included: each block is unpacked once per 8 tokens).</summary>
    public const int MaxTokens = int.MaxValue;

    private const int QK = 32, NativeBlockBytes = 22, ActBlockBytes = 34;

    /// <summary>Bytes of one block of 8 rows: 8 native blocks.</summary>
    public const int BlockBytes = Rows * NativeBlockBytes;

    // Layout of an interleaved block:
    //   [0, 16)     d of rows 0..7 (F16)
    //   [16, 48)    fifth bits: bit k of byte 4r + i is the fifth bit of value 4k + i of row r
    //   [48, 176)   nibbles: 32 bytes at 48 + 32m hold bytes 4m .. 4m + 3 of each row's qs, row r at 4r (low nibbles:
    //               values 4m + i, high nibbles: values 16 + 4m + i)
    private const int DOffset = 0, QhOffset = 16, QsOffset = 48;

    /// <summary>k with this layout: its rewrite, its inverse and its dot (TypeKernels.Interleave and what follows it).</summary>
    public static TypeKernels Use(in TypeKernels k) =>
        k.WithInterleaved(&Interleave, &Deinterleave, &Dot, Rows, Tokens, MaxTokens) with { DotGroupOnRead = &DotNativeGroup };

    /// <summary>Byte i (0..3) of a bit-plane word: bits i, i + 4, .., i + 28 of the native qh word, as bits 0..7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint PlaneByte(uint qh, int i)
    {
        if (Bmi2.IsSupported) return Bmi2.ParallelBitExtract(qh, 0x11111111u << i);
        uint v = 0;
        for (int k = 0; k < 8; k++) v |= (qh >> (4 * k + i) & 1) << k;
        return v;
    }

    /// <summary>The inverse of <see cref="PlaneByte"/>: bits 0..7 of v back to bits i, i + 4, .., i + 28.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint FromPlaneByte(uint v, int i)
    {
        if (Bmi2.IsSupported) return Bmi2.ParallelBitDeposit(v, 0x11111111u << i);
        uint qh = 0;
        for (int k = 0; k < 8; k++) qh |= (v >> k & 1) << (4 * k + i);
        return qh;
    }

    /// <summary>8 native rows rowBytes apart (n values each) into n / 32 interleaved blocks at dst (which may not overlap src).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave(byte* src, long rowBytes, int n, byte* dst)
    {
        for (int b = 0; b < n / QK; b++, dst += BlockBytes)
        {
            for (int r = 0; r < Rows; r++)
            {
                byte* w = src + r * rowBytes + (long)b * NativeBlockBytes;
                ((ushort*)(dst + DOffset))[r] = *(ushort*)w;
                uint qh = *(uint*)(w + 2);
                *(uint*)(dst + QhOffset + 4 * r) = PlaneByte(qh, 0) | PlaneByte(qh, 1) << 8 | PlaneByte(qh, 2) << 16 | PlaneByte(qh, 3) << 24;
                for (int m = 0; m < 4; m++) *(uint*)(dst + QsOffset + 32 * m + 4 * r) = *(uint*)(w + 6 + 4 * m);
            }
        }
    }

    /// <summary>The inverse of <see cref="Interleave"/>: n / 32 interleaved blocks into 8 native rows rowBytes apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Deinterleave(byte* src, int n, byte* dst, long rowBytes)
    {
        for (int b = 0; b < n / QK; b++, src += BlockBytes)
        {
            for (int r = 0; r < Rows; r++)
            {
                byte* w = dst + r * rowBytes + (long)b * NativeBlockBytes;
                *(ushort*)w = ((ushort*)(src + DOffset))[r];
                uint planes = *(uint*)(src + QhOffset + 4 * r);
                *(uint*)(w + 2) = FromPlaneByte(planes & 0xFF, 0) | FromPlaneByte(planes >> 8 & 0xFF, 1)
                    | FromPlaneByte(planes >> 16 & 0xFF, 2) | FromPlaneByte(planes >> 24, 3);
                for (int m = 0; m < 4; m++) *(uint*)(w + 6 + 4 * m) = *(uint*)(src + QsOffset + 32 * m + 4 * r);
            }
        }
    }

    /// <summary>
    /// One interleaved group (8 rows) against tokens (1 to 8) activation rows with sums actStride bytes apart:
    /// y[t * yStride + r]. Per 4 activation bytes broadcast, one vpmaddubsw serves the 8 rows; a block's sums are exact. A token's results do not depend on how many tokens ran with it.
    /// </summary>
    public static void Dot(byte* w, byte* act, long actStride, int tokens, int n, float* y, long yStride)
    {
        switch (tokens)
        {
            case 8: Dot<Count8>(w, act, actStride, n, y, yStride); break;
            case 7: Dot<Count7>(w, act, actStride, n, y, yStride); break;
            case 6: Dot<Count6>(w, act, actStride, n, y, yStride); break;
            case 5: Dot<Count5>(w, act, actStride, n, y, yStride); break;
            case 4: Dot<Count4>(w, act, actStride, n, y, yStride); break;
            case 3: Dot<Count3>(w, act, actStride, n, y, yStride); break;
            case 2: Dot<Count2>(w, act, actStride, n, y, yStride); break;
            default: Dot<Count1>(w, act, actStride, n, y, yStride); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount
    {
        int nb = n / QK;
        // token t's quants at q_t, its d_y at dy[t · ds] and its Σy at sy[t · ds]
        byte* q0 = act + 2, q1 = q0 + actStride, q2 = q1 + actStride, q3 = q2 + actStride;
        byte* q4 = q3 + actStride, q5 = q4 + actStride, q6 = q5 + actStride, q7 = q6 + actStride;
        float* dy = LegacyBlockDot.BlockScales(act, nb);
        int* sy = LegacyBlockDot.BlockIntSums(dy, nb);
        long ds = actStride / sizeof(float);
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        var m4 = Vector256.Create((byte)0x0F);
        var m10 = Vector256.Create((byte)0x10);
        for (int b = 0; b < nb; b++, w += BlockBytes)
        {
            Sse.Prefetch0(w + 8 * BlockBytes);
            // the 8 chunks of 4 values of the 8 rows, unsigned (0..31): chunk c's fifth bits are bit c of the planes
            Vector256<ushort> h = Vector256.Load(w + QhOffset).AsUInt16();
            Vector256<byte> n0 = Vector256.Load(w + QsOffset), n1 = Vector256.Load(w + QsOffset + 32);
            Vector256<byte> n2 = Vector256.Load(w + QsOffset + 64), n3 = Vector256.Load(w + QsOffset + 96);
            Vector256<byte> v0 = Value(n0 & m4, Vector256.ShiftLeft(h, 4), m10);
            Vector256<byte> v1 = Value(n1 & m4, Vector256.ShiftLeft(h, 3), m10);
            Vector256<byte> v2 = Value(n2 & m4, Vector256.ShiftLeft(h, 2), m10);
            Vector256<byte> v3 = Value(n3 & m4, Vector256.ShiftLeft(h, 1), m10);
            Vector256<byte> v4 = Value(Vector256.ShiftRightLogical(n0.AsUInt16(), 4).AsByte() & m4, h, m10);
            Vector256<byte> v5 = Value(Vector256.ShiftRightLogical(n1.AsUInt16(), 4).AsByte() & m4, Vector256.ShiftRightLogical(h, 1), m10);
            Vector256<byte> v6 = Value(Vector256.ShiftRightLogical(n2.AsUInt16(), 4).AsByte() & m4, Vector256.ShiftRightLogical(h, 2), m10);
            Vector256<byte> v7 = Value(Vector256.ShiftRightLogical(n3.AsUInt16(), 4).AsByte() & m4, Vector256.ShiftRightLogical(h, 3), m10);
            Vector256<float> dw = HalfConvert.F16ToF32(Avx2.ConvertToVector256Int32((ushort*)(w + DOffset)));
            long o = (long)b * ActBlockBytes;
            float* db = dy + b;
            int* sb = sy + b;
            Token(v0, v1, v2, v3, v4, v5, v6, v7, q0 + o, dw, db, sb, ref f0);
            if (TT.Count > 1) Token(v0, v1, v2, v3, v4, v5, v6, v7, q1 + o, dw, db + ds, sb + ds, ref f1);
            if (TT.Count > 2) Token(v0, v1, v2, v3, v4, v5, v6, v7, q2 + o, dw, db + 2 * ds, sb + 2 * ds, ref f2);
            if (TT.Count > 3) Token(v0, v1, v2, v3, v4, v5, v6, v7, q3 + o, dw, db + 3 * ds, sb + 3 * ds, ref f3);
            if (TT.Count > 4) Token(v0, v1, v2, v3, v4, v5, v6, v7, q4 + o, dw, db + 4 * ds, sb + 4 * ds, ref f4);
            if (TT.Count > 5) Token(v0, v1, v2, v3, v4, v5, v6, v7, q5 + o, dw, db + 5 * ds, sb + 5 * ds, ref f5);
            if (TT.Count > 6) Token(v0, v1, v2, v3, v4, v5, v6, v7, q6 + o, dw, db + 6 * ds, sb + 6 * ds, ref f6);
            if (TT.Count > 7) Token(v0, v1, v2, v3, v4, v5, v6, v7, q7 + o, dw, db + 7 * ds, sb + 7 * ds, ref f7);
        }
        f0.Store(y);
        if (TT.Count > 1) f1.Store(y + yStride);
        if (TT.Count > 2) f2.Store(y + 2 * yStride);
        if (TT.Count > 3) f3.Store(y + 3 * yStride);
        if (TT.Count > 4) f4.Store(y + 4 * yStride);
        if (TT.Count > 5) f5.Store(y + 5 * yStride);
        if (TT.Count > 6) f6.Store(y + 6 * yStride);
        if (TT.Count > 7) f7.Store(y + 7 * yStride);
    }

    /// <summary>q (0..31) from the nibbles and the fifth bits on 0x10.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Value(Vector256<byte> nibbles, Vector256<ushort> bits, Vector256<byte> m10) => nibbles | (bits.AsByte() & m10);

    /// <summary>
    /// One token's block against the 8 rows' 8 chunks: the rows' exact block sums Σ (q − 16)·y = Σ q·y − 16·Σy (four
    /// products of at most 2 · 31 · 127 add up in int16: at most 31496), then f += sums · (d_w · d_y), ggml's arithmetic.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Token(Vector256<byte> v0, Vector256<byte> v1, Vector256<byte> v2, Vector256<byte> v3,
        Vector256<byte> v4, Vector256<byte> v5, Vector256<byte> v6, Vector256<byte> v7, byte* q, Vector256<float> dw, float* dy, int* sy,
        ref Vector256<float> f)
    {
        Vector256<short> lo = (Product(v0, q) + Product(v1, q + 4)) + (Product(v2, q + 8) + Product(v3, q + 12));
        Vector256<short> hi = (Product(v4, q + 16) + Product(v5, q + 20)) + (Product(v6, q + 24) + Product(v7, q + 28));
        var ones = Vector256.Create((short)1);
        Vector256<int> sums = (Avx2.MultiplyAddAdjacent(lo, ones) + Avx2.MultiplyAddAdjacent(hi, ones)) - Vector256.Create(*sy << 4);
        f = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(sums), dw * Vector256.Create(*dy), f);
    }

    /// <summary>q·y for 4 activation bytes broadcast to every row, pairs added.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Product(Vector256<byte> v, byte* q) => Avx2.MultiplyAddAdjacent(v, Vector256.Create(*(int*)q).AsSByte());

    /// <summary>
    /// 8 native rows rowBytes apart against one activation row: <see cref="Dot"/>'s results for the rows interleaved,
    /// bit for bit (a mapped file's decode). Each row's block sums Σ (q − 16)·y are the same exact integers however they
    /// are added up: they are made a row at a time (one forward stream through the weights, as the prefetcher likes;
    /// 8 rows read side by side ran at half the bandwidth), then meet the rows' scales lane-wise as in <see cref="Dot"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotNativeGroup(byte* w, long rowBytes, byte* act, int n, float* y)
    {
        if (Avx512Vbmi.VL.IsSupported) DotNativeGroup<Q5_0Vbmi>(w, rowBytes, act, n, y);
        else DotNativeGroup<Q5_0Kernels>(w, rowBytes, act, n, y);
    }

    [ThreadStatic] private static int* t_sums;
    [ThreadStatic] private static int t_sumsBlocks;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotNativeGroup<T>(byte* w, long rowBytes, byte* act, int n, float* y) where T : ILegacyBlock
    {
        int nb = n / QK, nb8 = (nb + 7) & ~7;
        if (t_sumsBlocks < nb8)
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(t_sums);
            t_sums = (int*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(nb8 * Rows * sizeof(int)), 64);
            t_sumsBlocks = nb8;
        }
        // block b of row r at sums[r · nb8 + b]
        int* sums = t_sums;
        float* dy = LegacyBlockDot.BlockScales(act, nb);
        int* ysum = LegacyBlockDot.BlockIntSums(dy, nb);
        sbyte* x = (sbyte*)act + 2;
        for (int r = 0; r < Rows; r++)
        {
            byte* wr = w + r * rowBytes;
            int* sr = sums + r * nb8;
            int b = 0;
            // 8 blocks' partial sums added up into lane j by a tree of horizontal adds
            for (; b + 8 <= nb; b += 8, wr += 8 * NativeBlockBytes)
            {
                sbyte* q = x + (long)b * ActBlockBytes;
                Vector256<int> s01 = Avx2.HorizontalAdd(Partial<T>(wr, q), Partial<T>(wr + NativeBlockBytes, q + ActBlockBytes));
                Vector256<int> s23 = Avx2.HorizontalAdd(Partial<T>(wr + 2 * NativeBlockBytes, q + 2 * ActBlockBytes), Partial<T>(wr + 3 * NativeBlockBytes, q + 3 * ActBlockBytes));
                Vector256<int> s45 = Avx2.HorizontalAdd(Partial<T>(wr + 4 * NativeBlockBytes, q + 4 * ActBlockBytes), Partial<T>(wr + 5 * NativeBlockBytes, q + 5 * ActBlockBytes));
                Vector256<int> s67 = Avx2.HorizontalAdd(Partial<T>(wr + 6 * NativeBlockBytes, q + 6 * ActBlockBytes), Partial<T>(wr + 7 * NativeBlockBytes, q + 7 * ActBlockBytes));
                Vector256<int> s03 = Avx2.HorizontalAdd(s01, s23), s47 = Avx2.HorizontalAdd(s45, s67);
                (Avx2.Permute2x128(s03, s47, 0x20) + Avx2.Permute2x128(s03, s47, 0x31)).Store(sr + b);
            }
            for (; b < nb; b++, wr += NativeBlockBytes) sr[b] = Vector256.Sum(Partial<T>(wr, x + (long)b * ActBlockBytes));
        }
        Vector256<int> rowSums = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * nb8;
        Vector256<int> rowD = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (int)rowBytes;
        Vector256<float> f = default;
        for (int b = 0; b < nb; b++)
        {
            // Σ (q − 16)·y = Σ q·y − 16·Σy, exact
            Vector256<int> blockSums = Avx2.GatherVector256(sums + b, rowSums, 4) - Vector256.Create(16 * ysum[b]);
            Vector256<int> dBits = Avx2.GatherVector256((int*)(w + (long)b * NativeBlockBytes), rowD, 1) & Vector256.Create(0xFFFF);
            Vector256<float> dw = HalfConvert.F16ToF32(dBits);
            f = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(blockSums), dw * Vector256.Create(dy[b]), f);
        }
        f.Store(y);
    }

    /// <summary>One native block's Σ q·y (unsigned q) as 8 int32 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Partial<T>(byte* block, sbyte* q) where T : ILegacyBlock =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(T.Values(block), Vector256.Load(q)), Vector256.Create((short)1));
}
