// Q4_K rows interleaved in groups of 8 (made once at load, in place: the same bytes as the 8 rows' blocks): the decode
// layout. Block b of 8 rows becomes one 1152-byte block holding the 8 rows' d, dmin, scales and quants side by side,
// so that one activation value broadcast meets 8 rows in one vpmaddubsw and the rows' scales apply lane-wise, with
// no per-row shuffles or horizontal sums. The native layout is ggml's block_q4_K (Q4KBlock); tests hold the
// interleaved dot to the dot of the dequantized rows and Deinterleave to the inverse of Interleave.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static unsafe class Q4KInterleaved
{
    /// <summary>Rows per interleaved group.</summary>
    public const int Rows = 8;

    /// <summary>
    /// Tokens per call of <see cref="Dot(byte*, byte*, long, int, int, float*, long)"/>: each unpacked vector of
    /// weights meets 8 tokens' broadcast activations.
    /// </summary>
    public const int Tokens = 8;

    /// <summary>
    /// Batches up to which the interleaved rows are read as they are: all of them. Prefill reads the interleaved
    /// groups too (bench/R1Sharp.KernelBench, one thread, multiply-adds per CPU-second at 64 and 256 tokens: ahead of
    /// the packed kernel on de-interleaved rows, which also pays for the de-interleaving).
    /// </summary>
    public const int MaxTokens = int.MaxValue;

    private const int QK = 256, NativeBlockBytes = 144, ActBlockBytes = Q8_KAligned.BlockBytes;

    /// <summary>Bytes of one block of 8 rows: 8 native blocks.</summary>
    public const int BlockBytes = Rows * NativeBlockBytes;

    // Layout of an interleaved block:
    //   [0, 16)     d of rows 0..7 (F16)
    //   [16, 32)    dmin of rows 0..7 (F16)
    //   [32, 128)   each row's 12 bytes of packed scales and mins as three planes of 4 bytes per row (row r at 4r):
    //               bytes 0..3 at 32, bytes 4..7 at 64, bytes 8..11 at 96; one vector op unpacks a field for all 8 rows
    //   [128, 1152) quants: for sub-block pair g (0..3) and chunk c (0..7), 32 bytes at 128 + 32 (8g + c) hold bytes
    //               32g + 4c .. 32g + 4c + 3 of each row's qs, row r at 4r (low nibbles: sub-block 2g, high: 2g + 1)
    private const int DOffset = 0, DMinOffset = 16, ScalesOffset = 32, QsOffset = 128;

    /// <summary>k with this layout: its rewrite, its inverse and its dot (TypeKernels.Interleave and what follows it).</summary>
    public static TypeKernels Use(in TypeKernels k) =>
        k.WithInterleaved(&Interleave, &Deinterleave, &Dot, Rows, Tokens, MaxTokens) with { DotGroupOnRead = &Q4KKernels.DotRowsAsInterleaved };

    /// <summary>8 native rows rowBytes apart (n values each) into n / 256 interleaved blocks at dst (which may not overlap src).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave(byte* src, long rowBytes, int n, byte* dst)
    {
        for (int b = 0; b < n / QK; b++, dst += BlockBytes)
        {
            for (int r = 0; r < Rows; r++)
            {
                byte* w = src + r * rowBytes + (long)b * NativeBlockBytes;
                ((ushort*)(dst + DOffset))[r] = *(ushort*)w;
                ((ushort*)(dst + DMinOffset))[r] = *(ushort*)(w + 2);
                for (int plane = 0; plane < 3; plane++) *(uint*)(dst + ScalesOffset + 32 * plane + 4 * r) = *(uint*)(w + 4 + 4 * plane);
            }
            // quants: row r's 32 dwords become dword r of 32 consecutive 32-byte chunks (8×8 transposes)
            for (int k = 0; k < 32; k += 8)
                Transpose8x8(src + (long)b * NativeBlockBytes + 16 + 4 * k, rowBytes, dst + QsOffset + 32 * k, 32);
        }
    }

    /// <summary>The inverse of <see cref="Interleave"/>: n / 256 interleaved blocks into 8 native rows rowBytes apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Deinterleave(byte* src, int n, byte* dst, long rowBytes)
    {
        for (int b = 0; b < n / QK; b++, src += BlockBytes)
        {
            for (int r = 0; r < Rows; r++)
            {
                byte* w = dst + r * rowBytes + (long)b * NativeBlockBytes;
                *(ushort*)w = ((ushort*)(src + DOffset))[r];
                *(ushort*)(w + 2) = ((ushort*)(src + DMinOffset))[r];
                for (int plane = 0; plane < 3; plane++) *(uint*)(w + 4 + 4 * plane) = *(uint*)(src + ScalesOffset + 32 * plane + 4 * r);
            }
            for (int k = 0; k < 32; k += 8)
                Transpose8x8(src + QsOffset + 32 * k, 32, dst + (long)b * NativeBlockBytes + 16 + 4 * k, rowBytes);
        }
    }

    /// <summary>
    /// An 8×8 matrix of dwords, rows srcStride bytes apart, transposed into rows dstStride bytes apart: dword c of
    /// source row r becomes dword r of destination row c.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(byte* src, long srcStride, byte* dst, long dstStride)
    {
        if (!Avx2.IsSupported)
        {
            for (int r = 0; r < 8; r++)
                for (int c = 0; c < 8; c++) *(uint*)(dst + c * dstStride + 4 * r) = *(uint*)(src + r * srcStride + 4 * c);
            return;
        }
        Vector256<int> r0 = Vector256.Load((int*)src), r1 = Vector256.Load((int*)(src + srcStride));
        Vector256<int> r2 = Vector256.Load((int*)(src + 2 * srcStride)), r3 = Vector256.Load((int*)(src + 3 * srcStride));
        Vector256<int> r4 = Vector256.Load((int*)(src + 4 * srcStride)), r5 = Vector256.Load((int*)(src + 5 * srcStride));
        Vector256<int> r6 = Vector256.Load((int*)(src + 6 * srcStride)), r7 = Vector256.Load((int*)(src + 7 * srcStride));
        // dwords interleaved in pairs of rows, then quads, then the 128-bit halves swapped into place
        Vector256<int> t0 = Avx2.UnpackLow(r0, r1), t1 = Avx2.UnpackHigh(r0, r1), t2 = Avx2.UnpackLow(r2, r3), t3 = Avx2.UnpackHigh(r2, r3);
        Vector256<int> t4 = Avx2.UnpackLow(r4, r5), t5 = Avx2.UnpackHigh(r4, r5), t6 = Avx2.UnpackLow(r6, r7), t7 = Avx2.UnpackHigh(r6, r7);
        Vector256<long> q0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()), q1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64());
        Vector256<long> q2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()), q3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64());
        Vector256<long> q4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()), q5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64());
        Vector256<long> q6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()), q7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64());
        Avx2.Permute2x128(q0, q4, 0x20).Store((long*)dst);
        Avx2.Permute2x128(q1, q5, 0x20).Store((long*)(dst + dstStride));
        Avx2.Permute2x128(q2, q6, 0x20).Store((long*)(dst + 2 * dstStride));
        Avx2.Permute2x128(q3, q7, 0x20).Store((long*)(dst + 3 * dstStride));
        Avx2.Permute2x128(q0, q4, 0x31).Store((long*)(dst + 4 * dstStride));
        Avx2.Permute2x128(q1, q5, 0x31).Store((long*)(dst + 5 * dstStride));
        Avx2.Permute2x128(q2, q6, 0x31).Store((long*)(dst + 6 * dstStride));
        Avx2.Permute2x128(q3, q7, 0x31).Store((long*)(dst + 7 * dstStride));
    }

    // The unpacked fields hold row r's values of sub-blocks j (mod 4) at byte 4r + j mod 4: rows 0..3 in the low 128-bit
    // lane, rows 4..7 in the high one, so in-lane vpshufb masks spread them over the rows' int16 pairs (lanes 2r, 2r + 1).

    /// <summary>vpshufb mask giving row r's int16 pair the value of sub-block j (both lanes: a scale pair).</summary>
    private static Vector256<byte> ScaleMask(int j)
    {
        var m = new byte[32];
        for (int i = 0; i < 32; i++) m[i] = i % 2 == 0 ? (byte)(4 * (i % 16 / 4) + j % 4) : (byte)0x80;
        return Vector256.Create(m);
    }

    /// <summary>vpshufb mask giving row r's int16 pair the values of sub-blocks j and j + 1 (j even: a pair of mins).</summary>
    private static Vector256<byte> MinMask(int j)
    {
        var m = new byte[32];
        for (int i = 0; i < 32; i++) m[i] = i % 2 == 1 ? (byte)0x80 : (byte)(4 * (i % 16 / 4) + j % 4 + i % 4 / 2);
        return Vector256.Create(m);
    }

    private static readonly Vector256<byte>[] Masks =
        [ScaleMask(0), ScaleMask(1), ScaleMask(2), ScaleMask(3), MinMask(0), MinMask(2)];

    /// <summary>
    /// One interleaved group (8 rows) against tokens (1 to 8) Q8_K activation rows (<see cref="Q8_KAligned"/>) actStride
    /// bytes apart: y[t * yStride + r]. Per 4 activation values broadcast, one vpmaddubsw serves 8 rows; a sub-block's 8
    /// products add up in int16 (at most 8 · 2 · 15 · 128 = 30720) before one vpmaddwd by the 8 rows' scales. A token's
    /// results do not depend on how many tokens ran with it.
    /// </summary>
    public static void Dot(byte* w, byte* act, long actStride, int tokens, int n, float* y, long yStride) =>
        InterleavedDot.ForTokens<GroupKernel>(w, act, actStride, tokens, n, y, yStride);

    private struct GroupKernel : IInterleavedDot
    {
        public static void Run<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount =>
            Dot<TT>(w, act, actStride, n, y, yStride);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount
    {
        Vector256<byte> k0 = Masks[0], k1 = Masks[1], k2 = Masks[2], k3 = Masks[3], mk0 = Masks[4], mk2 = Masks[5];
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        var m3f = Vector256.Create((byte)0x3F);
        // token t's sums of d · dx · sumi at acc[t], of dmin · dx · (mins term) at acc[8 + t]
        Vector256<float>* acc = stackalloc Vector256<float>[16];
        for (int t = 0; t < 16; t++) acc[t] = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        byte* a4 = act + 4 * actStride, a5 = act + 5 * actStride, a6 = act + 6 * actStride, a7 = act + 7 * actStride;
        for (int b = 0; b < n / QK; b++, w += BlockBytes)
        {
            Sse.Prefetch0(w + 2 * BlockBytes);
            // ggml's 6-bit fields of the 8 rows (get_scale_min_k4): u0 = scales of sub-blocks 0..3, u1 = 4..7, u2, u3 the mins
            Vector256<byte> pa = Vector256.Load(w + ScalesOffset), pb = Vector256.Load(w + ScalesOffset + 32), pc = Vector256.Load(w + ScalesOffset + 64);
            Vector256<byte> u0 = pa & m3f, u2 = pb & m3f;
            Vector256<byte> u1 = (pc & m4) | (Vector256.ShiftRightLogical(pa.AsUInt16(), 2).AsByte() & m30);
            Vector256<byte> u3 = (Vector256.ShiftRightLogical(pc.AsUInt16(), 4).AsByte() & m4) | (Vector256.ShiftRightLogical(pb.AsUInt16(), 2).AsByte() & m30);

            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            for (int g = 0; g < 4; g++)
            {
                // sub-blocks 2g and 2g + 1: their 8 rows' quants (256 bytes) against 64 activations per token
                Vector256<byte> u = g < 2 ? u0 : u1;
                Vector256<short> scLo = Avx2.Shuffle(u, (g & 1) == 0 ? k0 : k2).AsInt16(), scHi = Avx2.Shuffle(u, (g & 1) == 0 ? k1 : k3).AsInt16();
                byte* q = w + QsOffset + 256 * g;
                int o = 64 * g;
                Vector256<short> lo0 = default, lo1 = default, lo2 = default, lo3 = default, lo4 = default, lo5 = default, lo6 = default, lo7 = default;
                Vector256<short> hi0 = default, hi1 = default, hi2 = default, hi3 = default, hi4 = default, hi5 = default, hi6 = default, hi7 = default;
                for (int c = 0; c < 8; c++, q += 32, o += 4)
                {
                    Vector256<byte> v = Vector256.Load(q);
                    Vector256<byte> lo = v & m4, hi = Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4;
                    Madd(lo, hi, a0 + o, ref lo0, ref hi0);
                    if (TT.Count > 1) Madd(lo, hi, a1 + o, ref lo1, ref hi1);
                    if (TT.Count > 2) Madd(lo, hi, a2 + o, ref lo2, ref hi2);
                    if (TT.Count > 3) Madd(lo, hi, a3 + o, ref lo3, ref hi3);
                    if (TT.Count > 4) Madd(lo, hi, a4 + o, ref lo4, ref hi4);
                    if (TT.Count > 5) Madd(lo, hi, a5 + o, ref lo5, ref hi5);
                    if (TT.Count > 6) Madd(lo, hi, a6 + o, ref lo6, ref hi6);
                    if (TT.Count > 7) Madd(lo, hi, a7 + o, ref lo7, ref hi7);
                }
                s0 += Avx2.MultiplyAddAdjacent(lo0, scLo) + Avx2.MultiplyAddAdjacent(hi0, scHi);
                if (TT.Count > 1) s1 += Avx2.MultiplyAddAdjacent(lo1, scLo) + Avx2.MultiplyAddAdjacent(hi1, scHi);
                if (TT.Count > 2) s2 += Avx2.MultiplyAddAdjacent(lo2, scLo) + Avx2.MultiplyAddAdjacent(hi2, scHi);
                if (TT.Count > 3) s3 += Avx2.MultiplyAddAdjacent(lo3, scLo) + Avx2.MultiplyAddAdjacent(hi3, scHi);
                if (TT.Count > 4) s4 += Avx2.MultiplyAddAdjacent(lo4, scLo) + Avx2.MultiplyAddAdjacent(hi4, scHi);
                if (TT.Count > 5) s5 += Avx2.MultiplyAddAdjacent(lo5, scLo) + Avx2.MultiplyAddAdjacent(hi5, scHi);
                if (TT.Count > 6) s6 += Avx2.MultiplyAddAdjacent(lo6, scLo) + Avx2.MultiplyAddAdjacent(hi6, scHi);
                if (TT.Count > 7) s7 += Avx2.MultiplyAddAdjacent(lo7, scLo) + Avx2.MultiplyAddAdjacent(hi7, scHi);
            }

            // row r's int16 pair: the mins of sub-blocks (0, 1), (2, 3), (4, 5), (6, 7)
            Vector256<short> p01 = Avx2.Shuffle(u2, mk0).AsInt16(), p23 = Avx2.Shuffle(u2, mk2).AsInt16();
            Vector256<short> p45 = Avx2.Shuffle(u3, mk0).AsInt16(), p67 = Avx2.Shuffle(u3, mk2).AsInt16();
            DMin(w, out Vector256<float> d, out Vector256<float> dmin);
            Accumulate(a0, s0, d, dmin, p01, p23, p45, p67, ref acc[0], ref acc[8]);
            if (TT.Count > 1) Accumulate(a1, s1, d, dmin, p01, p23, p45, p67, ref acc[1], ref acc[9]);
            if (TT.Count > 2) Accumulate(a2, s2, d, dmin, p01, p23, p45, p67, ref acc[2], ref acc[10]);
            if (TT.Count > 3) Accumulate(a3, s3, d, dmin, p01, p23, p45, p67, ref acc[3], ref acc[11]);
            if (TT.Count > 4) Accumulate(a4, s4, d, dmin, p01, p23, p45, p67, ref acc[4], ref acc[12]);
            if (TT.Count > 5) Accumulate(a5, s5, d, dmin, p01, p23, p45, p67, ref acc[5], ref acc[13]);
            if (TT.Count > 6) Accumulate(a6, s6, d, dmin, p01, p23, p45, p67, ref acc[6], ref acc[14]);
            if (TT.Count > 7) Accumulate(a7, s7, d, dmin, p01, p23, p45, p67, ref acc[7], ref acc[15]);
            a0 += ActBlockBytes;
            a1 += ActBlockBytes;
            a2 += ActBlockBytes;
            a3 += ActBlockBytes;
            a4 += ActBlockBytes;
            a5 += ActBlockBytes;
            a6 += ActBlockBytes;
            a7 += ActBlockBytes;
        }
        for (int t = 0; t < TT.Count; t++) (acc[t] - acc[8 + t]).Store(y + t * yStride);
    }

    /// <summary>One token's 4 activation bytes of the low and high sub-block against the 8 rows' unpacked nibbles, added in int16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Madd(Vector256<byte> lo, Vector256<byte> hi, byte* a, ref Vector256<short> accLo, ref Vector256<short> accHi)
    {
        accLo += Avx2.MultiplyAddAdjacent(lo, Broadcast(a));
        accHi += Avx2.MultiplyAddAdjacent(hi, Broadcast(a + 32));
    }

    /// <summary>4 activation bytes in every 32-bit lane (the interleaved K-quant kernels' one operand per 8 rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<sbyte> Broadcast(byte* a) => Vector256.Create(*(int*)a).AsSByte();

    /// <summary>
    /// One token's block: acc += d · dx · sumi, mins += dmin · dx · Σ_j min_j · (its sum over sub-block j), the
    /// sub-block sums paired as int32 lanes to meet the rows' min pairs in one vpmaddwd each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(byte* a, Vector256<int> sumi, Vector256<float> d, Vector256<float> dmin,
        Vector256<short> p01, Vector256<short> p23, Vector256<short> p45, Vector256<short> p67, ref Vector256<float> acc, ref Vector256<float> mins)
    {
        Vector128<int> s1 = Q4KKernels.SubBlockSums(a).AsInt32();
        var s = Vector256.Create(s1, s1);
        Vector256<int> m = Avx2.MultiplyAddAdjacent(p01, Avx2.Shuffle(s, 0x00).AsInt16()) + Avx2.MultiplyAddAdjacent(p23, Avx2.Shuffle(s, 0x55).AsInt16())
            + (Avx2.MultiplyAddAdjacent(p45, Avx2.Shuffle(s, 0xAA).AsInt16()) + Avx2.MultiplyAddAdjacent(p67, Avx2.Shuffle(s, 0xFF).AsInt16()));
        var yd = Vector256.Create(*(float*)(a + Q8_KAligned.D));
        acc = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(sumi), d * yd, acc);
        mins = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(m), dmin * yd, mins);
    }

    /// <summary>The 8 rows' d and dmin as F32 (one 16-lane conversion where there are 512-bit vectors).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DMin(byte* w, out Vector256<float> d, out Vector256<float> dmin)
    {
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            Vector512<float> f = BlockScale.F16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)(w + DOffset))));
            d = f.GetLower();
            dmin = f.GetUpper();
        }
        else
        {
            d = BlockScale.F16x8ToF32((ushort*)(w + DOffset));
            dmin = BlockScale.F16x8ToF32((ushort*)(w + DMinOffset));
        }
    }
}
