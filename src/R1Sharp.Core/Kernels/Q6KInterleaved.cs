// Q6_K rows interleaved in groups of 8 (made once at load, in place: the same bytes as the 8 rows' blocks), as Q4_K's
// (Q4KInterleaved): one activation dword broadcast meets 8 rows' 4 values in one vpmaddubsw, the rows' int8 scales
// apply lane-wise, and nothing is summed across lanes. ggml's block_q6_K keeps each value's low 4 bits in ql and its
// high 2 bits in qh; the interleaved block keeps the same fields, each row's bytes of them in 4-byte chunks side by
// side. Tests hold the interleaved dot to the dot of the dequantized rows and Deinterleave to the inverse of Interleave.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static unsafe class Q6KInterleaved
{
    /// <summary>Rows per interleaved group.</summary>
    public const int Rows = 8;

    /// <summary>Tokens per call of <see cref="Dot(byte*, byte*, long, int, int, float*, long)"/>.</summary>
    public const int Tokens = 4;

    /// <summary>
    /// Batches up to which the interleaved rows are read as they are; past them the packed prefill kernel on
    /// de-interleaved row chunks is faster (bench/R1Sharp.KernelBench: ahead at 4 tokens, even at 8, behind at 16).
    /// </summary>
    public const int MaxTokens = 8;

    private const int QK = 256, NativeBlockBytes = 210, ActBlockBytes = Q8_KAligned.BlockBytes;

    /// <summary>
    /// Blocks ahead of the current one whose every line the kernel prefetches: it reads a block's ql, qh and scale
    /// regions in turn, which the hardware prefetcher alone follows poorly from memory.
    /// </summary>
    private const int PrefetchBlocks = 2;

    /// <summary>Bytes of one block of 8 rows: 8 native blocks.</summary>
    public const int BlockBytes = Rows * NativeBlockBytes;

    // Native block: ql[128] at 0, qh[64] at 128, scales[16] (int8) at 192, d (F16) at 208. Value 128h + 32k + l (half h,
    // quarter k, l < 32) is (ql[64h + 32(k & 1) + l] >> 4(k >> 1) & 15 | (qh[32h + l] >> 2k & 3) << 4) − 32, with
    // scale (128h + 32k + l) / 16.
    // Layout of an interleaved block:
    //   [0, 16)       d of rows 0..7 (F16)
    //   [16, 144)     scales as 4 planes of 32 bytes: plane p holds each row's scales 4p..4p + 3, row r at 4r
    //   [144, 1680)   quants in the order the kernel reads them: for half h and chunk c (0..7), 96 bytes at
    //                 144 + 96 (8h + c) hold each row's ql[64h + 4c .. + 3] (low nibbles: quarter 0, high: quarter 2),
    //                 then ql[64h + 32 + 4c .. + 3] (quarters 1 and 3), then qh[32h + 4c .. + 3], row r at 4r in each
    private const int DOffset = 0, ScalesOffset = 16, QsOffset = 144, ChunkBytes = 96;

    /// <summary>k with this layout: its rewrite, its inverse and its dot (TypeKernels.Interleave and what follows it).</summary>
    public static TypeKernels Use(in TypeKernels k) =>
        k.WithInterleaved(&Interleave, &Deinterleave, &Dot, Rows, Tokens, MaxTokens) with { DotGroupOnRead = &Q6KKernels.DotRowsAsInterleaved };

    /// <summary>8 native rows rowBytes apart (n values each) into n / 256 interleaved blocks at dst (which may not overlap src).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave(byte* src, long rowBytes, int n, byte* dst)
    {
        for (int b = 0; b < n / QK; b++, dst += BlockBytes)
        {
            byte* s = src + (long)b * NativeBlockBytes;
            for (int r = 0; r < Rows; r++)
            {
                ((ushort*)(dst + DOffset))[r] = *(ushort*)(s + r * rowBytes + 208);
                for (int p = 0; p < 4; p++) *(uint*)(dst + ScalesOffset + 32 * p + 4 * r) = *(uint*)(s + r * rowBytes + 192 + 4 * p);
            }
            for (int h = 0; h < 2; h++)
            {
                byte* chunks = dst + QsOffset + 8 * ChunkBytes * h;
                Q4KInterleaved.Transpose8x8(s + 64 * h, rowBytes, chunks, ChunkBytes);
                Q4KInterleaved.Transpose8x8(s + 64 * h + 32, rowBytes, chunks + 32, ChunkBytes);
                Q4KInterleaved.Transpose8x8(s + 128 + 32 * h, rowBytes, chunks + 64, ChunkBytes);
            }
        }
    }

    /// <summary>The inverse of <see cref="Interleave"/>: n / 256 interleaved blocks into 8 native rows rowBytes apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Deinterleave(byte* src, int n, byte* dst, long rowBytes)
    {
        for (int b = 0; b < n / QK; b++, src += BlockBytes)
        {
            byte* d = dst + (long)b * NativeBlockBytes;
            for (int r = 0; r < Rows; r++)
            {
                *(ushort*)(d + r * rowBytes + 208) = ((ushort*)(src + DOffset))[r];
                for (int p = 0; p < 4; p++) *(uint*)(d + r * rowBytes + 192 + 4 * p) = *(uint*)(src + ScalesOffset + 32 * p + 4 * r);
            }
            for (int h = 0; h < 2; h++)
            {
                byte* chunks = src + QsOffset + 8 * ChunkBytes * h;
                Q4KInterleaved.Transpose8x8(chunks, ChunkBytes, d + 64 * h, rowBytes);
                Q4KInterleaved.Transpose8x8(chunks + 32, ChunkBytes, d + 64 * h + 32, rowBytes);
                Q4KInterleaved.Transpose8x8(chunks + 64, ChunkBytes, d + 128 + 32 * h, rowBytes);
            }
        }
    }

    // A scale plane holds row r's bytes at 4r: rows 0..3 in the low 128-bit lane, rows 4..7 in the high one, so in-lane
    // vpshufb masks reach them. Each mask puts a scale byte into the high byte of an int16 (the low one zero); an
    // arithmetic shift right by 8 then sign-extends it.

    /// <summary>Mask giving both int16 of row r's pair (lanes 2r, 2r + 1) scale byte j of the plane's dword.</summary>
    private static Vector256<byte> ScaleMask(int j)
    {
        var m = new byte[32];
        for (int i = 0; i < 32; i++) m[i] = i % 2 == 1 ? (byte)(4 * (i % 16 / 4) + j) : (byte)0x80;
        return Vector256.Create(m);
    }

    /// <summary>Mask giving row r's int16 pair scale bytes j and j + 1 (j even): the pair meets two block sums in one vpmaddwd.</summary>
    private static Vector256<byte> PairMask(int j)
    {
        var m = new byte[32];
        for (int i = 0; i < 32; i++) m[i] = i % 2 == 1 ? (byte)(4 * (i % 16 / 4) + j + i % 4 / 2) : (byte)0x80;
        return Vector256.Create(m);
    }

    private static readonly Vector256<byte>[] Masks = [ScaleMask(0), ScaleMask(1), ScaleMask(2), ScaleMask(3), PairMask(0), PairMask(2)];

    /// <summary>
    /// One interleaved group (8 rows) against tokens (1 to 4) Q8_K activation rows (<see cref="Q8_KAligned"/>) actStride
    /// bytes apart: y[t * yStride + r]. Per 4 activation values broadcast, one vpmaddubsw serves 8 rows; two such
    /// products add in int16 (at most 2 · 2 · 63 · 128 = 32256) before one vpmaddwd by the rows' scales of their
    /// sub-block; the −32 offset is Σ scale · (block sum of 16 activations), one vpmaddwd per pair of sub-blocks,
    /// taken off in the integers as ggml does. A token's results do not depend on how many tokens ran with it.
    /// </summary>
    public static void Dot(byte* w, byte* act, long actStride, int tokens, int n, float* y, long yStride)
    {
        switch (tokens)
        {
            case 4: Dot<Count4>(w, act, actStride, n, y, yStride); break;
            case 3: Dot<Count3>(w, act, actStride, n, y, yStride); break;
            case 2: Dot<Count2>(w, act, actStride, n, y, yStride); break;
            default: Dot<Count1>(w, act, actStride, n, y, yStride); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot<TT>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TT : struct, IPackedCount
    {
        Vector256<byte> k0 = Masks[0], k1 = Masks[1], k2 = Masks[2], k3 = Masks[3], pk0 = Masks[4], pk2 = Masks[5];
        var m4 = Vector256.Create((byte)0x0F);
        var m30 = Vector256.Create((byte)0x30);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        for (int b = 0; b < n / QK; b++, w += BlockBytes, a0 += ActBlockBytes, a1 += ActBlockBytes, a2 += ActBlockBytes, a3 += ActBlockBytes)
        {
            for (int l = 0; l < BlockBytes; l += 64) Sse.Prefetch0(w + PrefetchBlocks * BlockBytes + l);
            Vector256<int> s0 = Offset(w, a0, pk0, pk2), s1 = default, s2 = default, s3 = default;
            if (TT.Count > 1) s1 = Offset(w, a1, pk0, pk2);
            if (TT.Count > 2) s2 = Offset(w, a2, pk0, pk2);
            if (TT.Count > 3) s3 = Offset(w, a3, pk0, pk2);
            for (int h = 0; h < 2; h++)
            {
                // quarter k's values 16·half .. 16·half + 15 have scale 8h + 2k + half: plane 2h (quarters 0, 1) or
                // 2h + 1 (quarters 2, 3), byte 2(k mod 2) + half of each row's dword
                Vector256<byte> pl = Vector256.Load(w + ScalesOffset + 64 * h), ph = Vector256.Load(w + ScalesOffset + 64 * h + 32);
                for (int half = 0; half < 2; half++)
                {
                    Vector256<short> sc0 = Scale(pl, half == 0 ? k0 : k1), sc1 = Scale(pl, half == 0 ? k2 : k3);
                    Vector256<short> sc2 = Scale(ph, half == 0 ? k0 : k1), sc3 = Scale(ph, half == 0 ? k2 : k3);
                    for (int c = 4 * half; c < 4 * half + 4; c += 2)
                    {
                        byte* q = w + QsOffset + ChunkBytes * (8 * h + c);
                        Quarters(q, m4, m30, out var q0, out var q1, out var q2, out var q3);
                        Quarters(q + ChunkBytes, m4, m30, out var r0, out var r1, out var r2, out var r3);
                        int o = 128 * h + 4 * c;
                        s0 += Chunk(q0, q1, q2, q3, r0, r1, r2, r3, a0 + o, sc0, sc1, sc2, sc3);
                        if (TT.Count > 1) s1 += Chunk(q0, q1, q2, q3, r0, r1, r2, r3, a1 + o, sc0, sc1, sc2, sc3);
                        if (TT.Count > 2) s2 += Chunk(q0, q1, q2, q3, r0, r1, r2, r3, a2 + o, sc0, sc1, sc2, sc3);
                        if (TT.Count > 3) s3 += Chunk(q0, q1, q2, q3, r0, r1, r2, r3, a3 + o, sc0, sc1, sc2, sc3);
                    }
                }
            }
            Vector256<float> d = BlockScale.F16x8ToF32((ushort*)(w + DOffset));
            acc0 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(s0), d * Vector256.Create(*(float*)(a0 + Q8_KAligned.D)), acc0);
            if (TT.Count > 1) acc1 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(s1), d * Vector256.Create(*(float*)(a1 + Q8_KAligned.D)), acc1);
            if (TT.Count > 2) acc2 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(s2), d * Vector256.Create(*(float*)(a2 + Q8_KAligned.D)), acc2);
            if (TT.Count > 3) acc3 = Vector256.FusedMultiplyAdd(Avx.ConvertToVector256Single(s3), d * Vector256.Create(*(float*)(a3 + Q8_KAligned.D)), acc3);
        }
        acc0.Store(y);
        if (TT.Count > 1) acc1.Store(y + yStride);
        if (TT.Count > 2) acc2.Store(y + 2 * yStride);
        if (TT.Count > 3) acc3.Store(y + 3 * yStride);
    }

    /// <summary>The 8 rows' scale j of a plane (mask k_j) as int16, in both int16 of each row's pair.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scale(Vector256<byte> plane, Vector256<byte> mask) =>
        Vector256.ShiftRightArithmetic(Avx2.Shuffle(plane, mask).AsInt16(), 8);

    /// <summary>The four quarters' values (0..63) of one chunk: 4 values of each of the 8 rows, row r at 4r.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quarters(byte* chunk, Vector256<byte> m4, Vector256<byte> m30,
        out Vector256<byte> q0, out Vector256<byte> q1, out Vector256<byte> q2, out Vector256<byte> q3)
    {
        Vector256<byte> a = Vector256.Load(chunk), b = Vector256.Load(chunk + 32), hb = Vector256.Load(chunk + 64);
        // 16-bit shifts: the bits that cross into the neighbouring byte are masked away
        q0 = (a & m4) | (Vector256.ShiftLeft(hb.AsUInt16(), 4).AsByte() & m30);
        q1 = (b & m4) | (Vector256.ShiftLeft(hb.AsUInt16(), 2).AsByte() & m30);
        q2 = (Vector256.ShiftRightLogical(a.AsUInt16(), 4).AsByte() & m4) | (hb & m30);
        q3 = (Vector256.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & m4) | (Vector256.ShiftRightLogical(hb.AsUInt16(), 2).AsByte() & m30);
    }

    /// <summary>
    /// Two consecutive chunks (q: values 4c..4c + 3 of each quarter, r: 4c + 4..4c + 7) against one token's activations
    /// of half h at a (value 32k + 4c of quarter k at a + 32k): Σ scale · Σ q·y as 8 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Chunk(Vector256<byte> q0, Vector256<byte> q1, Vector256<byte> q2, Vector256<byte> q3,
        Vector256<byte> r0, Vector256<byte> r1, Vector256<byte> r2, Vector256<byte> r3, byte* a,
        Vector256<short> sc0, Vector256<short> sc1, Vector256<short> sc2, Vector256<short> sc3)
    {
        Vector256<short> p0 = Avx2.MultiplyAddAdjacent(q0, Q4KInterleaved.Broadcast(a)) + Avx2.MultiplyAddAdjacent(r0, Q4KInterleaved.Broadcast(a + 4));
        Vector256<short> p1 = Avx2.MultiplyAddAdjacent(q1, Q4KInterleaved.Broadcast(a + 32)) + Avx2.MultiplyAddAdjacent(r1, Q4KInterleaved.Broadcast(a + 36));
        Vector256<short> p2 = Avx2.MultiplyAddAdjacent(q2, Q4KInterleaved.Broadcast(a + 64)) + Avx2.MultiplyAddAdjacent(r2, Q4KInterleaved.Broadcast(a + 68));
        Vector256<short> p3 = Avx2.MultiplyAddAdjacent(q3, Q4KInterleaved.Broadcast(a + 96)) + Avx2.MultiplyAddAdjacent(r3, Q4KInterleaved.Broadcast(a + 100));
        return Avx2.MultiplyAddAdjacent(p0, sc0) + Avx2.MultiplyAddAdjacent(p1, sc1)
            + (Avx2.MultiplyAddAdjacent(p2, sc2) + Avx2.MultiplyAddAdjacent(p3, sc3));
    }

    /// <summary>−32 · Σ_j scale_j · (sum of the token's 16 activations of sub-block j), for each of the 8 rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Offset(byte* w, byte* a, Vector256<byte> pk0, Vector256<byte> pk2)
    {
        Vector256<int> sum = default;
        for (int p = 0; p < 4; p++)
        {
            Vector256<byte> plane = Vector256.Load(w + ScalesOffset + 32 * p);
            int* bs = (int*)(a + Q8_KAligned.BSums) + 2 * p; // block sums 4p, 4p + 1 and 4p + 2, 4p + 3 as int16 pairs
            sum += Avx2.MultiplyAddAdjacent(Vector256.ShiftRightArithmetic(Avx2.Shuffle(plane, pk0).AsInt16(), 8), Vector256.Create(bs[0]).AsInt16())
                + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightArithmetic(Avx2.Shuffle(plane, pk2).AsInt16(), 8), Vector256.Create(bs[1]).AsInt16());
        }
        return -Vector256.ShiftLeft(sum, 5);
    }

}
