// Q8_0 rows interleaved in groups of 16 (made once at load, in place: the same bytes as the 16 rows' blocks): the
// layout every batch size reads at 512 bits. Block b of 16 rows becomes one 544-byte block holding the 16 rows' d side
// by side and then their quants two by two, so that one pair of activation values broadcast meets 16 rows in one
// vpmaddwd whose 16 int32 lanes are the 16 rows: the block sums need no horizontal adds and the rows' scales apply
// lane-wise. The native layout is ggml's block_q8_0; tests hold the interleaved dot to the dot of the dequantized rows
// and Deinterleave to the inverse of Interleave.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static unsafe class Q8_0Interleaved
{
    /// <summary>Rows per interleaved group: one per int32 lane of a 512-bit vector.</summary>
    public const int Rows = 16;

    /// <summary>Tokens per call of <see cref="Dot(byte*, byte*, long, int, int, float*, long)"/>: an int32 and a float accumulator each.</summary>
    public const int Tokens = 8;

    /// <summary>Every batch reads the interleaved rows: the kernel is ahead of the packed one at every size (KernelBench).</summary>
    public const int MaxTokens = int.MaxValue;

    private const int QK = Q8_0Kernels.QK, NativeBlockBytes = Q8_0Kernels.BlockBytes;

    /// <summary>Bytes of one block of 16 rows: 16 native blocks.</summary>
    public const int BlockBytes = Rows * NativeBlockBytes;

    // Layout of an interleaved block:
    //   [0, 32)    d of rows 0..15 (F16)
    //   [32, 544)  quants: for pair p (0..15), 32 bytes at 32 + 32p hold quants 2p and 2p + 1 of each row, row r at 2r
    private const int QsOffset = 32;

    /// <summary>Blocks ahead of the current one that the kernel prefetches.</summary>
    private const int PrefetchBlocks = 8;

    /// <summary>k with this layout: its rewrite, its inverse and its dot (TypeKernels.Interleave and what follows it).</summary>
    public static TypeKernels Use(in TypeKernels k) =>
        k.WithInterleaved(&Interleave, &Deinterleave, &Dot, Rows, Tokens, MaxTokens) with { DotGroupOnRead = &DotNativeGroup };

    /// <summary>16 native rows rowBytes apart (n values each) into n / 32 interleaved blocks at dst (which may not overlap src).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Interleave(byte* src, long rowBytes, int n, byte* dst)
    {
        for (int b = 0; b < n / QK; b++, dst += BlockBytes)
        {
            byte* s = src + (long)b * NativeBlockBytes;
            for (int r = 0; r < Rows; r++) ((ushort*)dst)[r] = *(ushort*)(s + r * rowBytes);
            // row r's 16 quant pairs become pair r of 16 consecutive 32-byte chunks
            Transpose16x16(s + 2, rowBytes, dst + QsOffset, 32);
        }
    }

    /// <summary>The inverse of <see cref="Interleave"/>: n / 32 interleaved blocks into 16 native rows rowBytes apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Deinterleave(byte* src, int n, byte* dst, long rowBytes)
    {
        for (int b = 0; b < n / QK; b++, src += BlockBytes)
        {
            byte* d = dst + (long)b * NativeBlockBytes;
            for (int r = 0; r < Rows; r++) *(ushort*)(d + r * rowBytes) = ((ushort*)src)[r];
            Transpose16x16(src + QsOffset, 32, d + 2, rowBytes);
        }
    }

    /// <summary>
    /// A 16×16 matrix of 16-bit values, rows srcStride bytes apart, transposed into rows dstStride bytes apart: value c
    /// of source row r becomes value r of destination row c (unpacks of 16, 32 and 64 bits, then 128-bit halves).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Transpose16x16(byte* src, long srcStride, byte* dst, long dstStride)
    {
        Vector256<short>* v = stackalloc Vector256<short>[16];
        Vector256<short>* u = stackalloc Vector256<short>[16];
        for (int r = 0; r < 16; r++) v[r] = Vector256.Load((short*)(src + r * srcStride));
        // rows 2i, 2i + 1 interleaved: u[2i] holds their values 0..3 (and 8..11 in the high half), u[2i + 1] 4..7 (12..15)
        for (int i = 0; i < 8; i++)
        {
            u[2 * i] = Avx2.UnpackLow(v[2 * i], v[2 * i + 1]);
            u[2 * i + 1] = Avx2.UnpackHigh(v[2 * i], v[2 * i + 1]);
        }
        // rows 4q..4q + 3: v[4q + k] holds their values 2k, 2k + 1 (and 2k + 8, 2k + 9)
        for (int q = 0; q < 4; q++)
        {
            Vector256<int> l0 = u[4 * q].AsInt32(), l1 = u[4 * q + 2].AsInt32(), h0 = u[4 * q + 1].AsInt32(), h1 = u[4 * q + 3].AsInt32();
            v[4 * q] = Avx2.UnpackLow(l0, l1).AsInt16();
            v[4 * q + 1] = Avx2.UnpackHigh(l0, l1).AsInt16();
            v[4 * q + 2] = Avx2.UnpackLow(h0, h1).AsInt16();
            v[4 * q + 3] = Avx2.UnpackHigh(h0, h1).AsInt16();
        }
        // rows 8o..8o + 7: u[8o + c] holds their value c (and c + 8)
        for (int o = 0; o < 2; o++)
        {
            for (int k = 0; k < 4; k++)
            {
                Vector256<long> a = v[8 * o + k].AsInt64(), b = v[8 * o + 4 + k].AsInt64();
                u[8 * o + 2 * k] = Avx2.UnpackLow(a, b).AsInt16();
                u[8 * o + 2 * k + 1] = Avx2.UnpackHigh(a, b).AsInt16();
            }
        }
        for (int c = 0; c < 8; c++)
        {
            Avx2.Permute2x128(u[c], u[8 + c], 0x20).Store((short*)(dst + c * dstStride));
            Avx2.Permute2x128(u[c], u[8 + c], 0x31).Store((short*)(dst + (c + 8) * dstStride));
        }
    }

    /// <summary>
    /// One interleaved group (16 rows) against tokens (1 to 8) activation rows of the 512-bit Q8_0 layout actStride
    /// bytes apart: y[t * yStride + r]. Per activation pair broadcast, one vpmaddwd on the 16 rows' sign-extended
    /// pairs; a block's 16 products add up in int32, then one cvt and one fma by the rows' scales times the token's.
    /// A token's results do not depend on how many tokens ran with it.
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
        int nb = n / QK;
        // token t's int16 quants read as int32 pairs, and its block scales
        int* x0 = (int*)Q8_0Kernels.Quants16(act, n);
        long xs = actStride / sizeof(int);
        int* x1 = x0 + xs, x2 = x1 + xs, x3 = x2 + xs, x4 = x3 + xs, x5 = x4 + xs, x6 = x5 + xs, x7 = x6 + xs;
        float* d0 = Q8_0Kernels.Scales(act);
        long ds = actStride / sizeof(float);
        Vector512<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        for (int b = 0; b < nb; b++, w += BlockBytes)
        {
            for (int l = 0; l < BlockBytes; l += 64) Sse.Prefetch0(w + PrefetchBlocks * BlockBytes + l);
            Vector512<int> i0 = default, i1 = default, i2 = default, i3 = default, i4 = default, i5 = default, i6 = default, i7 = default;
            byte* q = w + QsOffset;
            int o = b * (QK / 2);
            for (int p = 0; p < QK / 2; p += 4, q += 128, o += 4)
            {
                Pair<TT>(q, x0 + o, x1 + o, x2 + o, x3 + o, x4 + o, x5 + o, x6 + o, x7 + o, ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
                Pair<TT>(q + 32, x0 + o + 1, x1 + o + 1, x2 + o + 1, x3 + o + 1, x4 + o + 1, x5 + o + 1, x6 + o + 1, x7 + o + 1,
                    ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
                Pair<TT>(q + 64, x0 + o + 2, x1 + o + 2, x2 + o + 2, x3 + o + 2, x4 + o + 2, x5 + o + 2, x6 + o + 2, x7 + o + 2,
                    ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
                Pair<TT>(q + 96, x0 + o + 3, x1 + o + 3, x2 + o + 3, x3 + o + 3, x4 + o + 3, x5 + o + 3, x6 + o + 3, x7 + o + 3,
                    ref i0, ref i1, ref i2, ref i3, ref i4, ref i5, ref i6, ref i7);
            }
            Vector512<float> dw = BlockScale.F16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)w)));
            float* db = d0 + b;
            f0 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i0), dw * Vector512.Create(db[0]), f0);
            if (TT.Count > 1) f1 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i1), dw * Vector512.Create(db[ds]), f1);
            if (TT.Count > 2) f2 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i2), dw * Vector512.Create(db[2 * ds]), f2);
            if (TT.Count > 3) f3 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i3), dw * Vector512.Create(db[3 * ds]), f3);
            if (TT.Count > 4) f4 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i4), dw * Vector512.Create(db[4 * ds]), f4);
            if (TT.Count > 5) f5 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i5), dw * Vector512.Create(db[5 * ds]), f5);
            if (TT.Count > 6) f6 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i6), dw * Vector512.Create(db[6 * ds]), f6);
            if (TT.Count > 7) f7 = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i7), dw * Vector512.Create(db[7 * ds]), f7);
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

    /// <summary>
    /// 16 native rows rowBytes apart against one activation row: <see cref="Dot"/>'s results for the rows interleaved,
    /// bit for bit. Each row's block is multiplied whole (one vpmaddwd of its 32 quants), the 16 rows' 16 lanes are
    /// summed into one vector of a lane per row (the same exact int32 block sums), and the scales apply as in
    /// <see cref="Dot"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotNativeGroup(byte* w, long rowBytes, byte* act, int n, float* y)
    {
        int nb = n / QK;
        short* x = Q8_0Kernels.Quants16(act, n);
        float* dx = Q8_0Kernels.Scales(act);
        ushort* d = stackalloc ushort[Rows];
        Vector512<float> f = default;
        for (int b = 0; b < nb; b++, w += NativeBlockBytes, x += QK)
        {
            Vector512<short> xv = Vector512.Load(x);
            // rows 2k and 2k + 1: their lanes added pairwise, 128-bit lane by lane
            Vector512<int> a0 = RowPair(w, rowBytes, 0, xv), a1 = RowPair(w, rowBytes, 2, xv), a2 = RowPair(w, rowBytes, 4, xv), a3 = RowPair(w, rowBytes, 6, xv);
            Vector512<int> a4 = RowPair(w, rowBytes, 8, xv), a5 = RowPair(w, rowBytes, 10, xv), a6 = RowPair(w, rowBytes, 12, xv), a7 = RowPair(w, rowBytes, 14, xv);
            // rows 4j..4j + 3, each 128-bit lane holding their sums over its quarter of the block
            Vector512<int> b0 = Quad(a0, a1), b1 = Quad(a2, a3), b2 = Quad(a4, a5), b3 = Quad(a6, a7);
            // the four quarters added: 128-bit lane j holds rows 4j..4j + 3
            Vector512<int> c01 = Avx512F.Shuffle4x128(b0, b1, 0x44) + Avx512F.Shuffle4x128(b0, b1, 0xEE);
            Vector512<int> c23 = Avx512F.Shuffle4x128(b2, b3, 0x44) + Avx512F.Shuffle4x128(b2, b3, 0xEE);
            Vector512<int> sums = Avx512F.Shuffle4x128(c01, c23, 0x88) + Avx512F.Shuffle4x128(c01, c23, 0xDD);
            for (int r = 0; r < Rows; r++) d[r] = *(ushort*)(w + r * rowBytes);
            Vector512<float> dw = BlockScale.F16ToF32(Avx512F.ConvertToVector512Int32(Vector256.Load(d)));
            f = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sums), dw * Vector512.Create(dx[b]), f);
        }
        f.Store(y);
    }

    /// <summary>Rows r and r + 1's block products (16 int32 lanes each) added as [r, r + 1, r, r + 1] pairs per 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> RowPair(byte* w, long rowBytes, int r, Vector512<short> xv)
    {
        Vector512<int> p = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w + r * rowBytes + 2))), xv);
        Vector512<int> q = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(w + (r + 1) * rowBytes + 2))), xv);
        return Avx512F.UnpackLow(p, q) + Avx512F.UnpackHigh(p, q);
    }

    /// <summary>Two row pairs' sums into [r, r + 1, r + 2, r + 3] per 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Quad(Vector512<int> a, Vector512<int> b) =>
        Avx512F.UnpackLow(a.AsInt64(), b.AsInt64()).AsInt32() + Avx512F.UnpackHigh(a.AsInt64(), b.AsInt64()).AsInt32();

    /// <summary>One pair of quants of the 16 rows (32 bytes at q) against each token's pair at x_t.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair<TT>(byte* q, int* x0, int* x1, int* x2, int* x3, int* x4, int* x5, int* x6, int* x7,
        ref Vector512<int> i0, ref Vector512<int> i1, ref Vector512<int> i2, ref Vector512<int> i3,
        ref Vector512<int> i4, ref Vector512<int> i5, ref Vector512<int> i6, ref Vector512<int> i7) where TT : struct, IPackedCount
    {
        Vector512<short> wv = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)q));
        i0 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x0).AsInt16());
        if (TT.Count > 1) i1 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x1).AsInt16());
        if (TT.Count > 2) i2 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x2).AsInt16());
        if (TT.Count > 3) i3 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x3).AsInt16());
        if (TT.Count > 4) i4 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x4).AsInt16());
        if (TT.Count > 5) i5 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x5).AsInt16());
        if (TT.Count > 6) i6 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x6).AsInt16());
        if (TT.Count > 7) i7 += Avx512BW.MultiplyAddAdjacent(wv, Vector512.Create(*x7).AsInt16());
    }
}
