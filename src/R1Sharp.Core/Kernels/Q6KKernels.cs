// Q6_K weights with Q8_K activations (in the SIMD paths, Q8_KAligned's 64-byte-aligned layout of ggml's values).
// A weight is q − 32 with q = low nibble | 2 high bits << 4 (0..63), so the dot is Σ d·dy·scale_j·(Σ q·y − 32·Σ y) over
// the 16 sub-blocks of 16: vpmaddubsw takes the unsigned q directly, vpmaddwd multiplies by the int8 scales widened to
// int16 (spread per pair of sub-blocks by an in-lane vpshufb), and the −32 offset is one vpmaddwd of the scales with
// the activation block sums (which are sums over the same 16 values).
//  - 256-bit: the 32 values of one quarter (two sub-blocks) per vector. The single-token dot (decode, at both levels)
//    takes the offset off in the integers, as ggml does: kept apart in float, the two large terms cancel and moved the
//    logits away from llama.cpp's. On Zen 4 it beat the 512-bit one (from DRAM at one thread, 39 vs 45 ps per weight),
//    and the two-row version (Dot2) shares the activations and the F16 conversion (35 ps per weight).
//  - 512-bit (the tile only): 64 values, quarters k and k+1 of a half, built from one 64-byte load of low nibbles (whose
//    two halves are the two quarters' nibbles) and the 32 high-bit bytes shifted by a different count in each half.
//    Prefill takes the packed kernel (DotPacked), 2 rows × up to 16 tokens per call, as Q4_K's.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q6KKernels
{
    private const int BlockBytes = 210, ActBlockBytes = Q8_KAligned.BlockBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales16(byte* w) => Avx2.ConvertToVector256Int16((sbyte*)w + 192);

    /// <summary>Σ scale_j · (block sum j of the activations) as 8 int32 lanes: 1/32 of the offset term.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> OffsetTerm(Vector256<short> scales, byte* act) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(act + Q8_KAligned.BSums)), scales));

    /// <summary>Scales 0..7 (half 0) or 8..15 (half 1) as int16, in both 128-bit lanes (for in-lane vpshufb broadcasts).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> HalfScales(Vector256<short> scales, int h)
    {
        Vector128<short> s = h == 0 ? scales.GetLower() : scales.GetUpper();
        return Vector256.Create(s, s);
    }

    /// <summary>vpshufb mask that spreads int16 lane k over the low 128-bit lane and lane k+1 over the high one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> PairMask(int k) =>
        Vector256.Create(Vector128.Create((ushort)(2 * k | (2 * k + 1) << 8)), Vector128.Create((ushort)(2 * k + 2 | (2 * k + 3) << 8))).AsByte();

    /// <summary>Scales j and j+1 (j even, within the half of <paramref name="half"/>) over the low and high 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ScalePair(Vector256<short> half, Vector256<byte> mask) => Avx2.Shuffle(half.AsByte(), mask).AsInt16();

    /// <summary>The four quarters (32 values each, 0..63) of half h of a block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quarters256(byte* w, int h, Vector256<byte> m4, Vector256<byte> m2,
        out Vector256<byte> q0, out Vector256<byte> q1, out Vector256<byte> q2, out Vector256<byte> q3)
    {
        Vector256<byte> l0 = Vector256.Load(w + 64 * h), l1 = Vector256.Load(w + 64 * h + 32), hb = Vector256.Load(w + 128 + 32 * h);
        // 16-bit shifts: the bits that cross into the neighbouring byte are masked away
        q0 = (l0 & m4) | (Vector256.ShiftLeft(hb.AsUInt16(), 4).AsByte() & m2);
        q1 = (l1 & m4) | (Vector256.ShiftLeft(hb.AsUInt16(), 2).AsByte() & m2);
        q2 = (Vector256.ShiftRightLogical(l0.AsUInt16(), 4).AsByte() & m4) | (hb & m2);
        q3 = (Vector256.ShiftRightLogical(l1.AsUInt16(), 4).AsByte() & m4) | (Vector256.ShiftRightLogical(hb.AsUInt16(), 2).AsByte() & m2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot32(Vector256<byte> q, sbyte* y, Vector256<short> scales) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(y)), scales);

    /// <summary>Σ over half h of a block of scale · Σ q·y, as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> HalfSum256(byte* w, int h, sbyte* y, Vector256<short> scales, in Masks k)
    {
        Vector256<short> sh = HalfScales(scales, h);
        Quarters256(w, h, k.M4, k.M2, out var q0, out var q1, out var q2, out var q3);
        return Dot32(q0, y, ScalePair(sh, k.K0)) + Dot32(q1, y + 32, ScalePair(sh, k.K1))
            + Dot32(q2, y + 64, ScalePair(sh, k.K2)) + Dot32(q3, y + 96, ScalePair(sh, k.K3));
    }

    /// <summary>
    /// Σ scale · Σ (q − 32)·y over one block as 8 int32 lanes: the −32 offset (one vpmaddwd of the scales with the block
    /// sums) is taken off in the integers, as ggml does, so no large float terms cancel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockSum256(byte* w, sbyte* y, Vector256<short> bsums, in Masks k)
    {
        Vector256<short> scales = Scales16(w);
        return HalfSum256(w, 0, y, scales, k) + HalfSum256(w, 1, y + 128, scales, k)
            - Vector256.ShiftLeft(Avx2.MultiplyAddAdjacent(bsums, scales), 5);
    }

    /// <summary>The constants of the single-token dots, built once before the loop (the JIT rebuilds those created in an inlinee).</summary>
    private readonly struct Masks()
    {
        public readonly Vector256<byte> K0 = PairMask(0), K1 = PairMask(2), K2 = PairMask(4), K3 = PairMask(6);
        public readonly Vector256<byte> M4 = Vector256.Create((byte)0x0F), M2 = Vector256.Create((byte)0x30);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        var k = new Masks();
        Vector256<float> acc = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, act += ActBlockBytes)
        {
            float d = *(float*)(act + Q8_KAligned.D) * BlockScale.F16ToF32(*(ushort*)(w + 208));
            Vector256<short> bsums = Vector256.Load((short*)(act + Q8_KAligned.BSums));
            Vector256<int> sumi = BlockSum256(w, (sbyte*)act, bsums, k);
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>
    /// 8 rows rowBytes apart against one activation row: bit for bit what <see cref="Q6KInterleaved.Dot"/> gives for
    /// them interleaved. That kernel scales each row's whole block sum (an exact integer); here <see cref="Dot256"/>'s
    /// lanes are totalled per block and scaled the same way, one row after the other.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotRowsAsInterleaved(byte* w, long rowBytes, byte* act, int n, float* y)
    {
        var k = new Masks();
        for (int r = 0; r < Q6KInterleaved.Rows; r++, w += rowBytes)
        {
            float acc = 0;
            byte* wb = w, a = act;
            for (int i = 0; i < n / 256; i++, wb += BlockBytes, a += ActBlockBytes)
            {
                float d = BlockScale.F16ToF32(*(ushort*)(wb + 208)) * *(float*)(a + Q8_KAligned.D);
                Vector256<int> sumi = BlockSum256(wb, (sbyte*)a, Vector256.Load((short*)(a + Q8_KAligned.BSums)), k);
                acc = MathF.FusedMultiplyAdd(Vector256.Sum(sumi), d, acc);
            }
            y[r] = acc;
        }
    }

    /// <summary>
    /// Two rows wStride bytes apart against one activation row: y[0], y[yStride], each bit for bit <see cref="Dot256"/>'s
    /// (the two F16 scales converted together).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot2_256(byte* w, long wStride, byte* act, int n, float* y, long yStride)
    {
        var k = new Masks();
        Vector256<float> acc0 = default, acc1 = default;
        byte* w1 = w + wStride;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, w1 += BlockBytes, act += ActBlockBytes)
        {
            Vector128<float> d = BlockScale.F16ToF32(Vector128.Create((int)*(ushort*)(w + 208), *(ushort*)(w1 + 208), 0, 0))
                * *(float*)(act + Q8_KAligned.D);
            Vector256<short> bsums = Vector256.Load((short*)(act + Q8_KAligned.BSums));
            Vector256<int> sumi0 = BlockSum256(w, (sbyte*)act, bsums, k);
            Vector256<int> sumi1 = BlockSum256(w1, (sbyte*)act, bsums, k);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(d.ToScalar()), Avx.ConvertToVector256Single(sumi0), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(d.GetElement(1)), Avx.ConvertToVector256Single(sumi1), acc1);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 4;
        var m4 = Vector256.Create((byte)0x0F);
        var m2 = Vector256.Create((byte)0x30);
        Vector256<float>* acc = stackalloc Vector256<float>[2 * T];
        for (int t = 0; t < 2 * T; t++) acc[t] = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            float dw = BlockScale.F16ToF32(*(ushort*)(w + 208));
            Vector256<short> scales = Scales16(w);
            Quarters256(w, 0, m4, m2, out var q0, out var q1, out var q2, out var q3);
            Quarters256(w, 1, m4, m2, out var q4, out var q5, out var q6, out var q7);
            Vector256<short> lo = HalfScales(scales, 0), hi = HalfScales(scales, 1);
            Vector256<short> s0 = ScalePair(lo, PairMask(0)), s1 = ScalePair(lo, PairMask(2)), s2 = ScalePair(lo, PairMask(4)), s3 = ScalePair(lo, PairMask(6));
            Vector256<short> s4 = ScalePair(hi, PairMask(0)), s5 = ScalePair(hi, PairMask(2)), s6 = ScalePair(hi, PairMask(4)), s7 = ScalePair(hi, PairMask(6));
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a;
                float d = dw * *(float*)(a + Q8_KAligned.D);
                Vector256<int> sumi = Dot32(q0, yq, s0) + Dot32(q1, yq + 32, s1) + Dot32(q2, yq + 64, s2) + Dot32(q3, yq + 96, s3)
                    + Dot32(q4, yq + 128, s4) + Dot32(q5, yq + 160, s5) + Dot32(q6, yq + 192, s6) + Dot32(q7, yq + 224, s7);
                acc[t] = Vector256.FusedMultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc[t]);
                acc[T + t] = Vector256.FusedMultiplyAdd(Vector256.Create(32 * d), OffsetTerm(scales, a), acc[T + t]);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = Vector256.Sum(acc[t]) - Vector256.Sum(acc[T + t]);
    }

    // ---- 512-bit ----

    /// <summary>vpermw indices that spread scales j..j+3 over the four 8-lane groups (one sub-block of 16 values each).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> QuadIndex(int j) =>
        Vector512.Create(Vector256.Create(Vector128.Create((short)j), Vector128.Create((short)(j + 1))),
            Vector256.Create(Vector128.Create((short)(j + 2)), Vector128.Create((short)(j + 3))));

    /// <summary>Quarters 0,1 (lo) and 2,3 (hi) of half h of a block, 64 values (0..63) each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Halves512(byte* w, int h, Vector512<ushort> shiftLo, Vector512<ushort> shiftHi, out Vector512<byte> lo, out Vector512<byte> hi)
    {
        var m4 = Vector512.Create((byte)0x0F);
        var m2 = Vector512.Create((byte)0x30);
        Vector512<byte> l = Vector512.Load(w + 64 * h);
        Vector512<ushort> hh = Q4KKernels.Both256(w + 128 + 32 * h).AsUInt16();
        lo = (l & m4) | (Avx512BW.ShiftLeftLogicalVariable(hh, shiftLo).AsByte() & m2);
        hi = (Vector512.ShiftRightLogical(l.AsUInt16(), 4).AsByte() & m4) | (Avx512BW.ShiftRightLogicalVariable(hh, shiftHi).AsByte() & m2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot64(Vector512<byte> q, sbyte* y, Vector512<short> scales) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Vector512.Load(y)), scales);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8_512(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 8;
        Vector512<short> i0 = QuadIndex(0), i1 = QuadIndex(4), i2 = QuadIndex(8), i3 = QuadIndex(12);
        // built once here: the JIT rebuilds such constants inside the loop when they are created in an inlinee
        var shiftLo = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)2));
        var shiftHi = Vector512.Create(Vector256.Create((ushort)0), Vector256.Create((ushort)2));
        Vector512<float>* acc = stackalloc Vector512<float>[T];
        Vector256<float>* accOff = stackalloc Vector256<float>[T];
        for (int t = 0; t < T; t++) { acc[t] = default; accOff[t] = default; }
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            float dw = BlockScale.F16ToF32(*(ushort*)(w + 208));
            Vector256<short> scales = Scales16(w);
            Vector512<short> s = scales.ToVector512Unsafe();
            Vector512<short> s0 = Avx512BW.PermuteVar32x16(s, i0), s1 = Avx512BW.PermuteVar32x16(s, i1);
            Vector512<short> s2 = Avx512BW.PermuteVar32x16(s, i2), s3 = Avx512BW.PermuteVar32x16(s, i3);
            Halves512(w, 0, shiftLo, shiftHi, out var a0, out var a1);
            Halves512(w, 1, shiftLo, shiftHi, out var b0, out var b1);
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a;
                float d = dw * *(float*)(a + Q8_KAligned.D);
                Vector512<int> sumi = Dot64(a0, yq, s0) + Dot64(a1, yq + 64, s1) + Dot64(b0, yq + 128, s2) + Dot64(b1, yq + 192, s3);
                acc[t] = Vector512.FusedMultiplyAdd(Vector512.Create(d), Avx512F.ConvertToVector512Single(sumi), acc[t]);
                accOff[t] = Vector256.FusedMultiplyAdd(Vector256.Create(32 * d), OffsetTerm(scales, a), accOff[t]);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = Vector512.Sum(acc[t]) - Vector256.Sum(accOff[t]);
    }

    // ---- packed prefill path (512-bit): 1 or 2 rows × 1 to 4 groups of 4 tokens (Q8_KAligned.Pack) ----
    //
    // As Q4_K's: a row's chunk of 64 values (one sub-block per 128-bit lane) is built once and shuffled 4 ways, then
    // meets every group. The int16 lanes of two vpmaddubsw add without overflow (4 products of 63 · 127), not four, so
    // a chunk takes 4 vpmaddubsw and 2 vpmaddwd by the scales. The −32 offset is subtracted in the integers (exact).

    /// <summary>Values 64c..64c+63 of a block (0..63 each), in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Chunk512(byte* w, int c, Vector512<ushort> shiftLo, Vector512<ushort> shiftHi)
    {
        var m4 = Vector512.Create((byte)0x0F);
        var m2 = Vector512.Create((byte)0x30);
        Vector512<byte> l = Vector512.Load(w + 64 * (c >> 1));
        Vector512<ushort> hh = Q4KKernels.Both256(w + 128 + 32 * (c >> 1)).AsUInt16();
        return (c & 1) == 0
            ? (l & m4) | (Avx512BW.ShiftLeftLogicalVariable(hh, shiftLo).AsByte() & m2)
            : (Vector512.ShiftRightLogical(l.AsUInt16(), 4).AsByte() & m4) | (Avx512BW.ShiftRightLogicalVariable(hh, shiftHi).AsByte() & m2);
    }

    /// <summary>vpermw indices that give int16 pair 4L + t the scales of block sums 2L, 2L+1 (j = 0) or 8+2L, 9+2L (j = 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> PackedSumsIndex(int j)
    {
        short b = (short)(8 * j);
        return Vector512.Create(
            Vector256.Create(Vector128.Create(b, (short)(b + 1), b, (short)(b + 1), b, (short)(b + 1), b, (short)(b + 1)),
                Vector128.Create((short)(b + 2), (short)(b + 3), (short)(b + 2), (short)(b + 3), (short)(b + 2), (short)(b + 3), (short)(b + 2), (short)(b + 3))),
            Vector256.Create(Vector128.Create((short)(b + 4), (short)(b + 5), (short)(b + 4), (short)(b + 5), (short)(b + 4), (short)(b + 5), (short)(b + 4), (short)(b + 5)),
                Vector128.Create((short)(b + 6), (short)(b + 7), (short)(b + 6), (short)(b + 7), (short)(b + 6), (short)(b + 7), (short)(b + 6), (short)(b + 7))));
    }

    /// <summary>One row's chunk against one group: lane 4L + t gets scale_L · (token t's dot over values 16L..16L+15).</summary>
    private struct Q6Chunk : IPackedChunk
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> Chunk(Vector512<byte> u0, Vector512<byte> u1, Vector512<byte> u2, Vector512<byte> u3,
            Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3, Vector512<short> scales) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u0, a0) + Avx512BW.MultiplyAddAdjacent(u1, a1), scales)
            + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u2, a2) + Avx512BW.MultiplyAddAdjacent(u3, a3), scales);
    }

    /// <summary>acc + d · dx · (sumi − 32 · Σ scale · block sums) for one row and one group's block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PackedCombine(Vector512<int> sumi, byte* g, Vector512<float> d, Vector512<short> sums0, Vector512<short> sums1,
        Vector512<float> acc)
    {
        Vector512<int> off = Avx512BW.MultiplyAddAdjacent(Vector512.Load((short*)(g + Q8_KAligned.PackedBSums)), sums0)
            + Avx512BW.MultiplyAddAdjacent(Vector512.Load((short*)(g + Q8_KAligned.PackedBSums + 64)), sums1);
        return Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi - Vector512.ShiftLeft(off, 5)),
            d * Vector512.Load((float*)(g + Q8_KAligned.PackedD)), acc);
    }

    public static void DotPacked_512(byte* w, long wStride, int rows, byte* packed, long groupStride, int groups, int n, float* y, long yStride)
    {
        switch (groups, rows)
        {
            case (4, 2): DotPacked<Count2, Count4>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (4, _): DotPacked<Count1, Count4>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (3, 2): DotPacked<Count2, Count3>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (3, _): DotPacked<Count1, Count3>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (2, 2): DotPacked<Count2, Count2>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (2, _): DotPacked<Count1, Count2>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (_, 2): DotPacked<Count2, Count1>(w, wStride, packed, groupStride, n, y, yStride); break;
            default: DotPacked<Count1, Count1>(w, wStride, packed, groupStride, n, y, yStride); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotPacked<TR, TG>(byte* w, long wStride, byte* packed, long groupStride, int n, float* y, long yStride)
        where TR : struct, IPackedCount where TG : struct, IPackedCount
    {
        // built once here: the JIT rebuilds such constants inside the loop when they are created in an inlinee
        var shiftLo = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)2));
        var shiftHi = Vector512.Create(Vector256.Create((ushort)0), Vector256.Create((ushort)2));
        Vector512<short> sumsIndex0 = PackedSumsIndex(0), sumsIndex1 = PackedSumsIndex(1), quad0 = QuadIndex(0), four = Vector512.Create((short)4);
        Vector512<float>* acc = stackalloc Vector512<float>[8]; // row r, group g at 4r + g
        for (int i = 0; i < 8; i++) acc[i] = default;
        byte* w1 = w + wStride;
        for (int b = 0; b < n / 256; b++, w += BlockBytes, w1 += BlockBytes, packed += Q8_KAligned.PackedBlockBytes)
        {
            Vector512<short> s0 = Scales16(w).ToVector512Unsafe(), s1 = TR.Count > 1 ? Scales16(w1).ToVector512Unsafe() : default, quad = quad0;
            Vector512<int> i00 = default, i01 = default, i02 = default, i03 = default;
            Vector512<int> i10 = default, i11 = default, i12 = default, i13 = default;
            for (int c = 0; c < 4; c++, quad += four)
            {
                Vector512<int> x0 = Chunk512(w, c, shiftLo, shiftHi).AsInt32(), x1 = TR.Count > 1 ? Chunk512(w1, c, shiftLo, shiftHi).AsInt32() : default;
                Vector512<short> su = Avx512BW.PermuteVar32x16(s0, quad), sv = TR.Count > 1 ? Avx512BW.PermuteVar32x16(s1, quad) : default;
                PackedLayout.Chunk<TR, TG, Q6Chunk>(x0, x1, su, sv, (sbyte*)(packed + 256 * c), groupStride,
                    ref i00, ref i01, ref i02, ref i03, ref i10, ref i11, ref i12, ref i13);
            }
            var d = Vector512.Create(BlockScale.F16ToF32(*(ushort*)(w + 208)));
            Vector512<short> m0 = Avx512BW.PermuteVar32x16(s0, sumsIndex0), m1 = Avx512BW.PermuteVar32x16(s0, sumsIndex1);
            acc[0] = PackedCombine(i00, packed, d, m0, m1, acc[0]);
            if (TG.Count > 1) acc[1] = PackedCombine(i01, packed + groupStride, d, m0, m1, acc[1]);
            if (TG.Count > 2) acc[2] = PackedCombine(i02, packed + 2 * groupStride, d, m0, m1, acc[2]);
            if (TG.Count > 3) acc[3] = PackedCombine(i03, packed + 3 * groupStride, d, m0, m1, acc[3]);
            if (TR.Count > 1)
            {
                d = Vector512.Create(BlockScale.F16ToF32(*(ushort*)(w1 + 208)));
                m0 = Avx512BW.PermuteVar32x16(s1, sumsIndex0);
                m1 = Avx512BW.PermuteVar32x16(s1, sumsIndex1);
                acc[4] = PackedCombine(i10, packed, d, m0, m1, acc[4]);
                if (TG.Count > 1) acc[5] = PackedCombine(i11, packed + groupStride, d, m0, m1, acc[5]);
                if (TG.Count > 2) acc[6] = PackedCombine(i12, packed + 2 * groupStride, d, m0, m1, acc[6]);
                if (TG.Count > 3) acc[7] = PackedCombine(i13, packed + 3 * groupStride, d, m0, m1, acc[7]);
            }
        }
        for (int g = 0; g < TG.Count; g++)
        {
            for (int r = 0; r < TR.Count; r++) PackedLayout.Store(y + 4 * g * yStride + r, yStride, acc[4 * r + g]);
        }
    }

    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 => Q6KInterleaved.Use(Q8_KAligned.UsePacked(Q8_KAligned.Use(QuantBlockKernels.Create<Q6_KBlock>()) with
        {
            Dot = &Dot256, Dot2 = &Dot2_256, DotTile = &Dot8_512, TileTokens = 8, DotPacked = &DotPacked_512,
        })),
        SimdLevel.V256 => Q6KInterleaved.Use(Q8_KAligned.Use(QuantBlockKernels.Create<Q6_KBlock>()) with
        {
            Dot = &Dot256, Dot2 = &Dot2_256, DotTile = &Dot4_256, TileTokens = 4,
        }),
        SimdLevel.V128 or SimdLevel.V128Dot => Vector128Dots.WithKQuantDots(QuantBlockKernels.Create<Q6_KBlock>(), level),
        _ => QuantBlockKernels.Create<Q6_KBlock>(),
    };
}
