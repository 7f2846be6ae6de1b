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

    /// <summary>Rows per interleaved group of the 512-bit layout.</summary>
    public const int Rows512 = 16;

    /// <summary>Tokens per call of <see cref="Dot(byte*, byte*, long, int, int, float*, long)"/>: each unpacked block meets 8 tokens.</summary>
    public const int Tokens = 8;

    /// <summary>Every batch reads the interleaved rows (prefill included: each block is unpacked once per 8 tokens).</summary>
    public const int MaxTokens = int.MaxValue;

    private const int QK = 32, NativeBlockBytes = 22, ActBlockBytes = 34;

    /// <summary>Bytes of one block of 8 rows: 8 native blocks.</summary>
    public const int BlockBytes = Rows * NativeBlockBytes;

    // Layout of an interleaved block of R rows (8, or 16 in the 512-bit layout):
    //   [0, 2R)     d of rows 0..R − 1 (F16)
    //   [2R, 6R)    fifth bits: bit k of byte 4r + i is the fifth bit of value 4k + i of row r
    //   [6R, 22R)   nibbles: 4R bytes at 6R + 4Rm hold bytes 4m .. 4m + 3 of each row's qs, row r at 4r (low nibbles:
    //               values 4m + i, high nibbles: values 16 + 4m + i)
    private const int DOffset = 0, QhOffset = 2 * Rows, QsOffset = 6 * Rows;

    /// <summary>k with the 8-row layout: its rewrite, its inverse and its dot (TypeKernels.Interleave and what follows it).</summary>
    public static TypeKernels Use(in TypeKernels k) =>
        k.WithInterleaved(&Interleave, &Deinterleave, &Dot, Rows, Tokens, MaxTokens) with { DotGroupOnRead = &DotNativeGroup };

    /// <summary>k with the 16-row layout read by 512-bit vectors.</summary>
    public static TypeKernels Use512(in TypeKernels k) =>
        k.WithInterleaved(&Interleave16, &Deinterleave16, &Dot512, Rows512, Tokens, MaxTokens) with { DotGroupOnRead = &DotNativeGroup16 };

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
    public static void Interleave(byte* src, long rowBytes, int n, byte* dst) => Interleave(src, rowBytes, n, dst, Rows);

    /// <summary>As <see cref="Interleave(byte*, long, int, byte*)"/>, 16 rows.</summary>
    public static void Interleave16(byte* src, long rowBytes, int n, byte* dst) => Interleave(src, rowBytes, n, dst, Rows512);

    /// <summary>The inverse of <see cref="Interleave(byte*, long, int, byte*)"/>: n / 32 interleaved blocks into 8 native rows rowBytes apart.</summary>
    public static void Deinterleave(byte* src, int n, byte* dst, long rowBytes) => Deinterleave(src, n, dst, rowBytes, Rows);

    /// <summary>The inverse of <see cref="Interleave16"/>.</summary>
    public static void Deinterleave16(byte* src, int n, byte* dst, long rowBytes) => Deinterleave(src, n, dst, rowBytes, Rows512);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Interleave(byte* src, long rowBytes, int n, byte* dst, int rows)
    {
        for (int b = 0; b < n / QK; b++, dst += rows * NativeBlockBytes)
        {
            for (int r = 0; r < rows; r++)
            {
                byte* w = src + r * rowBytes + (long)b * NativeBlockBytes;
                ((ushort*)dst)[r] = *(ushort*)w;
                uint qh = *(uint*)(w + 2);
                *(uint*)(dst + 2 * rows + 4 * r) = PlaneByte(qh, 0) | PlaneByte(qh, 1) << 8 | PlaneByte(qh, 2) << 16 | PlaneByte(qh, 3) << 24;
                for (int m = 0; m < 4; m++) *(uint*)(dst + 6 * rows + 4 * rows * m + 4 * r) = *(uint*)(w + 6 + 4 * m);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Deinterleave(byte* src, int n, byte* dst, long rowBytes, int rows)
    {
        for (int b = 0; b < n / QK; b++, src += rows * NativeBlockBytes)
        {
            for (int r = 0; r < rows; r++)
            {
                byte* w = dst + r * rowBytes + (long)b * NativeBlockBytes;
                *(ushort*)w = ((ushort*)src)[r];
                uint planes = *(uint*)(src + 2 * rows + 4 * r);
                *(uint*)(w + 2) = FromPlaneByte(planes & 0xFF, 0) | FromPlaneByte(planes >> 8 & 0xFF, 1)
                    | FromPlaneByte(planes >> 16 & 0xFF, 2) | FromPlaneByte(planes >> 24, 3);
                for (int m = 0; m < 4; m++) *(uint*)(w + 6 + 4 * m) = *(uint*)(src + 6 * rows + 4 * rows * m + 4 * r);
            }
        }
    }

    /// <summary>
    /// One interleaved group (8 rows) against tokens (1 to 8) activation rows with sums actStride bytes apart:
    /// y[t * yStride + r]. Per 4 activation bytes broadcast, one vpmaddubsw serves the 8 rows; a block's sums are exact.
    /// A token's results do not depend on how many tokens ran with it.
    /// </summary>
    public static void Dot(byte* w, byte* act, long actStride, int tokens, int n, float* y, long yStride) =>
        InterleavedDot.ForTokens<Dot256Kernel>(w, act, actStride, tokens, n, y, yStride);

    private struct Dot256Kernel : IInterleavedDot
    {
        public static void Run<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount =>
            Dot<TT>(w, act, actStride, n, y, yStride);
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
    /// One 16-row group of the 512-bit layout against tokens (1 to 8) activation rows: <see cref="Dot"/>'s arithmetic
    /// on 16 rows per vector (half the instructions per weight byte).
    /// </summary>
    public static void Dot512(byte* w, byte* act, long actStride, int tokens, int n, float* y, long yStride) =>
        InterleavedDot.ForTokens<Dot512Kernel>(w, act, actStride, tokens, n, y, yStride);

    private struct Dot512Kernel : IInterleavedDot
    {
        public static void Run<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount =>
            Dot512<TT>(w, act, actStride, n, y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot512<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount
    {
        const int R = Rows512, Bytes = R * NativeBlockBytes, Qh = 2 * R, Qs = 6 * R;
        int nb = n / QK;
        byte* q0 = act + 2, q1 = q0 + actStride, q2 = q1 + actStride, q3 = q2 + actStride;
        byte* q4 = q3 + actStride, q5 = q4 + actStride, q6 = q5 + actStride, q7 = q6 + actStride;
        float* dy = LegacyBlockDot.BlockScales(act, nb);
        int* sy = LegacyBlockDot.BlockIntSums(dy, nb);
        long ds = actStride / sizeof(float);
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        var m4 = Vector512.Create((byte)0x0F);
        var m10 = Vector512.Create((byte)0x10);
        for (int b = 0; b < nb; b++, w += Bytes)
        {
            Sse.Prefetch0(w + 4 * Bytes);
            Vector512<ushort> h = Vector512.Load(w + Qh).AsUInt16();
            Vector512<byte> n0 = Vector512.Load(w + Qs), n1 = Vector512.Load(w + Qs + 64);
            Vector512<byte> n2 = Vector512.Load(w + Qs + 128), n3 = Vector512.Load(w + Qs + 192);
            Vector512<byte> v0 = (n0 & m4) | (Vector512.ShiftLeft(h, 4).AsByte() & m10);
            Vector512<byte> v1 = (n1 & m4) | (Vector512.ShiftLeft(h, 3).AsByte() & m10);
            Vector512<byte> v2 = (n2 & m4) | (Vector512.ShiftLeft(h, 2).AsByte() & m10);
            Vector512<byte> v3 = (n3 & m4) | (Vector512.ShiftLeft(h, 1).AsByte() & m10);
            Vector512<byte> v4 = (Vector512.ShiftRightLogical(n0.AsUInt16(), 4).AsByte() & m4) | (h.AsByte() & m10);
            Vector512<byte> v5 = (Vector512.ShiftRightLogical(n1.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(h, 1).AsByte() & m10);
            Vector512<byte> v6 = (Vector512.ShiftRightLogical(n2.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(h, 2).AsByte() & m10);
            Vector512<byte> v7 = (Vector512.ShiftRightLogical(n3.AsUInt16(), 4).AsByte() & m4) | (Vector512.ShiftRightLogical(h, 3).AsByte() & m10);
            Vector512<float> dw = HalfConvert.F16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)w)));
            long o = (long)b * ActBlockBytes;
            float* db = dy + b;
            int* sb = sy + b;
            Token512(v0, v1, v2, v3, v4, v5, v6, v7, q0 + o, dw, db, sb, ref f0);
            if (TT.Count > 1) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q1 + o, dw, db + ds, sb + ds, ref f1);
            if (TT.Count > 2) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q2 + o, dw, db + 2 * ds, sb + 2 * ds, ref f2);
            if (TT.Count > 3) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q3 + o, dw, db + 3 * ds, sb + 3 * ds, ref f3);
            if (TT.Count > 4) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q4 + o, dw, db + 4 * ds, sb + 4 * ds, ref f4);
            if (TT.Count > 5) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q5 + o, dw, db + 5 * ds, sb + 5 * ds, ref f5);
            if (TT.Count > 6) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q6 + o, dw, db + 6 * ds, sb + 6 * ds, ref f6);
            if (TT.Count > 7) Token512(v0, v1, v2, v3, v4, v5, v6, v7, q7 + o, dw, db + 7 * ds, sb + 7 * ds, ref f7);
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

    /// <summary><see cref="Token"/> on 16 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Token512(Vector512<byte> v0, Vector512<byte> v1, Vector512<byte> v2, Vector512<byte> v3,
        Vector512<byte> v4, Vector512<byte> v5, Vector512<byte> v6, Vector512<byte> v7, byte* q, Vector512<float> dw, float* dy, int* sy,
        ref Vector512<float> f)
    {
        Vector512<short> lo = (Product(v0, q) + Product(v1, q + 4)) + (Product(v2, q + 8) + Product(v3, q + 12));
        Vector512<short> hi = (Product(v4, q + 16) + Product(v5, q + 20)) + (Product(v6, q + 24) + Product(v7, q + 28));
        var ones = Vector512.Create((short)1);
        Vector512<int> sums = (Avx512BW.MultiplyAddAdjacent(lo, ones) + Avx512BW.MultiplyAddAdjacent(hi, ones)) - Vector512.Create(*sy << 4);
        f = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sums), dw * Vector512.Create(*dy), f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Product(Vector512<byte> v, byte* q) => Avx512BW.MultiplyAddAdjacent(v, Vector512.Create(*(int*)q).AsSByte());

    /// <summary>
    /// 8 native rows rowBytes apart against one activation row: <see cref="Dot"/>'s results for the rows interleaved,
    /// bit for bit (a mapped file's decode). Each row's block sums Σ (q − 16)·y are the same exact integers however they
    /// are added up: they are made a row at a time (one forward stream through the weights, as the prefetcher likes;
    /// 8 rows read side by side ran at half the bandwidth), then meet the rows' scales lane-wise as in <see cref="Dot"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotNativeGroup(byte* w, long rowBytes, byte* act, int n, float* y)
    {
        int nb = n / QK, nb8 = (nb + 7) & ~7;
        int* sums = RowSums(w, rowBytes, Rows, act, nb, nb8);
        float* dy = LegacyBlockDot.BlockScales(act, nb);
        int* ysum = LegacyBlockDot.BlockIntSums(dy, nb);
        Vector256<int> rowSums = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * nb8;
        Vector256<int> rowD = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (int)rowBytes;
        Vector256<float> f = default;
        for (int b = 0; b < nb; b++)
        {
            // Σ (q − 16)·y = Σ q·y − 16·Σy, exact
            Vector256<int> blockSums = Avx2.GatherVector256(sums + b, rowSums, 4) - Vector256.Create(ysum[b] << 4);
            Vector256<int> dBits = Avx2.GatherVector256((int*)(w + (long)b * NativeBlockBytes), rowD, 1) & Vector256.Create(0xFFFF);
            f = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(blockSums), HalfConvert.F16ToF32(dBits) * Vector256.Create(dy[b]), f);
        }
        f.Store(y);
    }

    /// <summary>16 native rows as <see cref="Dot512"/> reads them interleaved, bit for bit: <see cref="DotNativeGroup"/> on 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotNativeGroup16(byte* w, long rowBytes, byte* act, int n, float* y)
    {
        int nb = n / QK, nb8 = (nb + 7) & ~7;
        int* sums = RowSums(w, rowBytes, Rows512, act, nb, nb8);
        float* dy = LegacyBlockDot.BlockScales(act, nb);
        int* ysum = LegacyBlockDot.BlockIntSums(dy, nb);
        Vector256<int> rowSums = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * nb8;
        Vector256<int> rowD = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (int)rowBytes;
        byte* w8 = w + 8 * rowBytes;
        int* sums8 = sums + 8 * nb8;
        Vector512<float> f = default;
        for (int b = 0; b < nb; b++)
        {
            Vector512<int> blockSums = Vector512.Create(Avx2.GatherVector256(sums + b, rowSums, 4), Avx2.GatherVector256(sums8 + b, rowSums, 4))
                - Vector512.Create(ysum[b] << 4);
            long o = (long)b * NativeBlockBytes;
            Vector512<int> dBits = Vector512.Create(Avx2.GatherVector256((int*)(w + o), rowD, 1), Avx2.GatherVector256((int*)(w8 + o), rowD, 1))
                & Vector512.Create(0xFFFF);
            f = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(blockSums), HalfConvert.F16ToF32(dBits) * Vector512.Create(dy[b]), f);
        }
        f.Store(y);
    }

    [ThreadStatic] private static int* t_sums;
    [ThreadStatic] private static int t_sumsInts;

    /// <summary>Each row's Σ q·y per block (unsigned q), a row at a time: block b of row r at [r · nb8 + b] of this thread's buffer.</summary>
    private static int* RowSums(byte* w, long rowBytes, int rows, byte* act, int nb, int nb8)
    {
        if (t_sumsInts < nb8 * rows)
        {
            System.Runtime.InteropServices.NativeMemory.AlignedFree(t_sums);
            t_sums = (int*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)(nb8 * rows * sizeof(int)), 64);
            t_sumsInts = nb8 * rows;
        }
        if (Avx512Vbmi.VL.IsSupported) RowSums<Q5_0Vbmi>(w, rowBytes, rows, (sbyte*)act + 2, nb, nb8, t_sums);
        else RowSums<Q5_0Kernels>(w, rowBytes, rows, (sbyte*)act + 2, nb, nb8, t_sums);
        return t_sums;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowSums<T>(byte* w, long rowBytes, int rows, sbyte* x, int nb, int nb8, int* sums) where T : ILegacyBlock
    {
        for (int r = 0; r < rows; r++)
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
    }

    /// <summary>One native block's Σ q·y (unsigned q) as 8 int32 partial sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Partial<T>(byte* block, sbyte* q) where T : ILegacyBlock =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(T.Values(block), Vector256.Load(q)), Vector256.Create((short)1));
}
