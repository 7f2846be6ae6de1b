// Q4_K weights with Q8_K activations (in the SIMD paths, Q8_KAligned's 64-byte-aligned layout of ggml's values).
// Per 256 values: Σ d·dy·scale_s·Σ(q·y) − dmin·dy·Σ min_s·(sums of y over the sub-block). The weight nibbles are
// unsigned 0..15, so vpmaddubsw takes them directly as its unsigned side (no sign trick); vpmaddwd then multiplies
// the int16 pair sums by the sub-block's 6-bit scale. The mins term uses the activation block sums.
//  - 256-bit: 32 nibbles (one sub-block) per vector; the scales are unpacked once per block and spread per sub-block
//    by an in-lane vpshufb, the mins term is one 128-bit vpmaddwd with the paired block sums (ggml's AVX2 shape).
//  - 512-bit (the tile only): 64 values, the low and high nibbles of 32 bytes (sub-blocks 2g and 2g+1), which are
//    also 64 consecutive activations, so one load of each side and one vpermw of the scales per 64 values.
// The single-token dot (decode) is the 256-bit one at both levels: on Zen 4, which runs zmm ops as two halves, the
// 512-bit version measured ~10% slower (31 vs 28 ps per weight from L2, 34 vs 30 from DRAM, one thread). Decode takes
// two rows per call (Dot2): the activation loads, block sums and F16 scales are shared (43 vs 51 ps per weight from DRAM).
// The tile unpacks a weight block once into registers and runs it against each token of the tile. Prefill takes the
// packed kernel (DotPacked): 4 tokens interleaved per 32-bit lane, so one vpmaddubsw serves 4 tokens and one vpmaddwd
// by the scales serves the sum of 4 of them.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q4KKernels
{
    private const int BlockBytes = 144, ActBlockBytes = Q8_KAligned.BlockBytes;

    /// <summary>
    /// The 8 six-bit scales and 8 mins of a block (12 packed bytes), one byte each, in the integer registers (the
    /// single-token dots leave those ports idle: unpacked in vector registers, they measured slower).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void ScalesMins(byte* s, out ulong scales, out ulong mins)
    {
        const uint m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, hi2 = 0x30303030;
        uint a = *(uint*)s, b = *(uint*)(s + 4), c = *(uint*)(s + 8);
        // scales and mins 4..7: low nibbles (scales) or high nibbles (mins) of bytes 8..11, the top two bits of bytes 0..3 (4..7) at bits 4, 5
        scales = (a & m6) | (ulong)((c & m4) | ((a >> 2) & hi2)) << 32;
        mins = (b & m6) | (ulong)(((c >> 4) & m4) | ((b >> 2) & hi2)) << 32;
    }

    /// <summary>d and dmin of a block in lanes 0 and 1 (one conversion for both).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> DMin(byte* w) => BlockScale.F16ToF32(Sse41.ConvertToVector128Int32((ushort*)w));

    /// <summary>The 8 mins each twice as int16, to meet the 16 activation block sums (16 values each) in one vpmaddwd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> MinsPairs(ulong mins) =>
        Avx2.ConvertToVector256Int16(Ssse3.Shuffle(Vector128.CreateScalar(mins).AsByte(),
            Vector128.Create((byte)0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7))).AsInt16();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MinTerm(Vector256<short> minsPairs, byte* act) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(act + Q8_KAligned.BSums)), minsPairs));

    // ---- 256-bit ----

    /// <summary>The 16 activation block sums of a block added in pairs: the sums over its 8 sub-blocks of 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<short> SubBlockSums(byte* act)
    {
        Vector256<short> bsums = Vector256.Load((short*)(act + Q8_KAligned.BSums));
        return Ssse3.HorizontalAdd(bsums.GetLower(), bsums.GetUpper());
    }

    /// <summary>
    /// The 8 scales of weight block w as int16 in both 128-bit lanes (for in-lane vpshufb broadcasts) and its mins term:
    /// Σ min_s · (sum of the activations over sub-block s).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> ScalesAndMins(byte* w, Vector128<short> subBlockSums, out Vector128<int> minTerm)
    {
        ScalesMins(w + 4, out ulong scales, out ulong mins);
        Vector256<short> sm = Avx2.ConvertToVector256Int16(Vector128.Create(scales, mins).AsByte()).AsInt16();
        minTerm = Sse2.MultiplyAddAdjacent(sm.GetUpper(), subBlockSums);
        return Vector256.Create(sm.GetLower(), sm.GetLower());
    }

    /// <summary>vpshufb mask that broadcasts int16 lane k of each 128-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> WordMask(int k) => Vector256.Create((ushort)(2 * k | (2 * k + 1) << 8)).AsByte();

    /// <summary>Sub-blocks 2g and 2g+1 (the low and high nibbles of 32 bytes) against their 64 activations, scaled.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot64x256(byte* q, sbyte* y, Vector256<short> scales, Vector256<byte> maskLo, Vector256<byte> maskHi,
        Vector256<byte> m4)
    {
        Vector256<byte> v = Vector256.Load(q);
        Vector256<short> pl = Avx2.MultiplyAddAdjacent(v & m4, Vector256.Load(y));
        Vector256<short> ph = Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m4, Vector256.Load(y + 32));
        return Avx2.MultiplyAddAdjacent(pl, Avx2.Shuffle(scales.AsByte(), maskLo).AsInt16())
            + Avx2.MultiplyAddAdjacent(ph, Avx2.Shuffle(scales.AsByte(), maskHi).AsInt16());
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        Vector256<byte> k0 = WordMask(0), k1 = WordMask(1), k2 = WordMask(2), k3 = WordMask(3);
        Vector256<byte> k4 = WordMask(4), k5 = WordMask(5), k6 = WordMask(6), k7 = WordMask(7);
        // built once here: the JIT rebuilds such constants inside the loop when they are created in an inlinee
        var m4 = Vector256.Create((byte)0x0F);
        Vector256<float> acc = default;
        Vector128<float> accMin = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, act += ActBlockBytes)
        {
            float yd = *(float*)(act + Q8_KAligned.D);
            Vector256<short> scales = ScalesAndMins(w, SubBlockSums(act), out Vector128<int> minTerm);
            Vector128<float> dd = DMin(w) * yd;
            accMin = Vector128.FusedMultiplyAdd(Vector128.Create(dd.GetElement(1)), Vector128.ConvertToSingle(minTerm), accMin);
            sbyte* y = (sbyte*)act;
            Vector256<int> sumi = Dot64x256(w + 16, y, scales, k0, k1, m4) + Dot64x256(w + 48, y + 64, scales, k2, k3, m4)
                + Dot64x256(w + 80, y + 128, scales, k4, k5, m4) + Dot64x256(w + 112, y + 192, scales, k6, k7, m4);
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(dd.ToScalar()), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc) - Vector128.Sum(accMin);
    }

    /// <summary>
    /// 8 rows rowBytes apart against one activation row: bit for bit what <see cref="Q4KInterleaved.Dot"/> gives for
    /// them interleaved. That kernel scales each row's whole block sum (an exact integer) and its mins term in turn;
    /// here <see cref="Dot256"/>'s lanes are totalled per block and scaled the same way, one row after the other.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotRowsAsInterleaved(byte* w, long rowBytes, byte* act, int n, float* y)
    {
        Vector256<byte> k0 = WordMask(0), k1 = WordMask(1), k2 = WordMask(2), k3 = WordMask(3);
        Vector256<byte> k4 = WordMask(4), k5 = WordMask(5), k6 = WordMask(6), k7 = WordMask(7);
        var m4 = Vector256.Create((byte)0x0F);
        for (int r = 0; r < Q4KInterleaved.Rows; r++, w += rowBytes)
        {
            float acc = 0, mins = 0;
            byte* wb = w, a = act;
            for (int i = 0; i < n / 256; i++, wb += BlockBytes, a += ActBlockBytes)
            {
                Vector256<short> scales = ScalesAndMins(wb, SubBlockSums(a), out Vector128<int> minTerm);
                Vector128<float> dd = DMin(wb) * *(float*)(a + Q8_KAligned.D);
                sbyte* q = (sbyte*)a;
                Vector256<int> sumi = Dot64x256(wb + 16, q, scales, k0, k1, m4) + Dot64x256(wb + 48, q + 64, scales, k2, k3, m4)
                    + Dot64x256(wb + 80, q + 128, scales, k4, k5, m4) + Dot64x256(wb + 112, q + 192, scales, k6, k7, m4);
                acc = MathF.FusedMultiplyAdd(Vector256.Sum(sumi), dd.ToScalar(), acc);
                mins = MathF.FusedMultiplyAdd(Vector128.Sum(minTerm), dd.GetElement(1), mins);
            }
            y[r] = acc - mins;
        }
    }

    /// <summary>
    /// Two rows wStride bytes apart against one activation row: y[0], y[yStride], each bit for bit <see cref="Dot256"/>'s.
    /// The activations are loaded once for both rows and the four F16 scales (d, dmin of each row) converted together.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot2_256(byte* w, long wStride, byte* act, int n, float* y, long yStride)
    {
        Vector256<byte> k0 = WordMask(0), k1 = WordMask(1), k2 = WordMask(2), k3 = WordMask(3);
        Vector256<byte> k4 = WordMask(4), k5 = WordMask(5), k6 = WordMask(6), k7 = WordMask(7);
        // built once here: the JIT rebuilds such constants inside the loop when they are created in an inlinee
        var m4 = Vector256.Create((byte)0x0F);
        Vector256<float> acc0 = default, acc1 = default, accMin = default;
        byte* w1 = w + wStride;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, w1 += BlockBytes, act += ActBlockBytes)
        {
            float yd = *(float*)(act + Q8_KAligned.D);
            // d0, dmin0, d1, dmin1
            Vector128<float> dd = BlockScale.F16ToF32(Sse41.ConvertToVector128Int32(
                Vector128.Create(*(uint*)w, *(uint*)w1, 0, 0).AsUInt16())) * yd;
            Vector128<short> pairs = SubBlockSums(act);
            Vector256<short> s0 = ScalesAndMins(w, pairs, out Vector128<int> minTerm0), s1 = ScalesAndMins(w1, pairs, out Vector128<int> minTerm1);
            Vector256<float> dmin = Avx2.PermuteVar8x32(dd.ToVector256Unsafe(), Vector256.Create(1, 1, 1, 1, 3, 3, 3, 3));
            accMin = Vector256.FusedMultiplyAdd(dmin, Vector256.ConvertToSingle(Vector256.Create(minTerm0, minTerm1)), accMin);
            sbyte* a = (sbyte*)act;
            Vector256<int> sumi0 = Dot64x256(w + 16, a, s0, k0, k1, m4) + Dot64x256(w + 48, a + 64, s0, k2, k3, m4)
                + Dot64x256(w + 80, a + 128, s0, k4, k5, m4) + Dot64x256(w + 112, a + 192, s0, k6, k7, m4);
            Vector256<int> sumi1 = Dot64x256(w1 + 16, a, s1, k0, k1, m4) + Dot64x256(w1 + 48, a + 64, s1, k2, k3, m4)
                + Dot64x256(w1 + 80, a + 128, s1, k4, k5, m4) + Dot64x256(w1 + 112, a + 192, s1, k6, k7, m4);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dd.ToScalar()), Avx.ConvertToVector256Single(sumi0), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dd.GetElement(2)), Avx.ConvertToVector256Single(sumi1), acc1);
        }
        y[0] = Vector256.Sum(acc0) - Vector128.Sum(accMin.GetLower());
        y[yStride] = Vector256.Sum(acc1) - Vector128.Sum(accMin.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 4;
        var mask = Vector256.Create((byte)0x0F);
        Vector256<float>* acc = stackalloc Vector256<float>[2 * T];
        for (int t = 0; t < 2 * T; t++) acc[t] = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            Vector128<float> dm = DMin(w);
            float d = dm.ToScalar(), dmin = dm.GetElement(1);
            ScalesMins(w + 4, out ulong sc, out ulong mn);
            Vector256<short> minsPairs = MinsPairs(mn);
            Vector256<byte> q0 = Vector256.Load(w + 16), q1 = Vector256.Load(w + 48), q2 = Vector256.Load(w + 80), q3 = Vector256.Load(w + 112);
            Vector256<byte> l0 = q0 & mask, h0 = Vector256.ShiftRightLogical(q0.AsUInt16(), 4).AsByte() & mask;
            Vector256<byte> l1 = q1 & mask, h1 = Vector256.ShiftRightLogical(q1.AsUInt16(), 4).AsByte() & mask;
            Vector256<byte> l2 = q2 & mask, h2 = Vector256.ShiftRightLogical(q2.AsUInt16(), 4).AsByte() & mask;
            Vector256<byte> l3 = q3 & mask, h3 = Vector256.ShiftRightLogical(q3.AsUInt16(), 4).AsByte() & mask;
            Vector256<short> s0 = Vector256.Create((short)(sc & 0xFF)), s1 = Vector256.Create((short)((sc >> 8) & 0xFF));
            Vector256<short> s2 = Vector256.Create((short)((sc >> 16) & 0xFF)), s3 = Vector256.Create((short)((sc >> 24) & 0xFF));
            Vector256<short> s4 = Vector256.Create((short)((sc >> 32) & 0xFF)), s5 = Vector256.Create((short)((sc >> 40) & 0xFF));
            Vector256<short> s6 = Vector256.Create((short)((sc >> 48) & 0xFF)), s7 = Vector256.Create((short)(sc >> 56));
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a;
                float yd = *(float*)(a + Q8_KAligned.D);
                Vector256<int> sumi =
                    Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(l0, Vector256.Load(yq)), s0)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(h0, Vector256.Load(yq + 32)), s1)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(l1, Vector256.Load(yq + 64)), s2)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(h1, Vector256.Load(yq + 96)), s3)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(l2, Vector256.Load(yq + 128)), s4)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(h2, Vector256.Load(yq + 160)), s5)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(l3, Vector256.Load(yq + 192)), s6)
                    + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(h3, Vector256.Load(yq + 224)), s7);
                acc[t] = Vector256.FusedMultiplyAdd(Vector256.Create(d * yd), Avx.ConvertToVector256Single(sumi), acc[t]);
                acc[T + t] = Vector256.FusedMultiplyAdd(Vector256.Create(dmin * yd), MinTerm(minsPairs, a), acc[T + t]);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = Vector256.Sum(acc[t]) - Vector256.Sum(acc[T + t]);
    }

    // ---- 512-bit ----

    /// <summary>vpermw indices that spread scales 2g and 2g+1 over the low and high 16 int16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> PairIndex(int g) =>
        Vector512.Create(Vector256.Create((short)(2 * g)), Vector256.Create((short)(2 * g + 1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Scales512(ulong sc) => Sse41.ConvertToVector128Int16(Vector128.CreateScalar(sc).AsByte()).ToVector256Unsafe().ToVector512Unsafe();

    /// <summary>
    /// The 64 values of sub-blocks 2g and 2g+1: the low nibbles of 32 bytes, then their high nibbles. The bytes go
    /// into both halves (one vinserti64x4) and are shifted by 0 and 4 with one vpsrlvw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Nibbles64(byte* q, Vector512<ushort> shift)
    {
        Vector512<ushort> v = Both256(q).AsUInt16();
        return Avx512BW.ShiftRightLogicalVariable(v, shift).AsByte() & Vector512.Create((byte)0x0F);
    }

    /// <summary>
    /// 32 bytes in both halves of a zmm. Not Avx512F.BroadcastVector256ToVector512: .NET 10's JIT encodes its memory
    /// operand's compressed displacement for a 16-byte operand, so [p+16] reads p+32 (wrong results, caught by the tests).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<byte> Both256(byte* p)
    {
        Vector256<byte> v = Vector256.Load(p);
        return Avx512F.InsertVector256(v.ToVector512Unsafe(), v, 1);
    }

    /// <summary>The shift counts of <see cref="Nibbles64"/>, built once outside the loop (the JIT rebuilds it otherwise).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> NibbleShift() => Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot64(Vector512<byte> q, sbyte* y, Vector512<short> scales) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Vector512.Load(y)), scales);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8_512(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 8;
        Vector512<short> i0 = PairIndex(0), i1 = PairIndex(1), i2 = PairIndex(2), i3 = PairIndex(3);
        Vector512<ushort> shift = NibbleShift();
        Vector512<float>* acc = stackalloc Vector512<float>[T];
        Vector256<float>* accMin = stackalloc Vector256<float>[T];
        for (int t = 0; t < T; t++) { acc[t] = default; accMin[t] = default; }
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            Vector128<float> dm = DMin(w);
            float d = dm.ToScalar(), dmin = dm.GetElement(1);
            ScalesMins(w + 4, out ulong sc, out ulong mn);
            Vector256<short> minsPairs = MinsPairs(mn);
            Vector512<short> s = Scales512(sc);
            Vector512<short> s0 = Avx512BW.PermuteVar32x16(s, i0), s1 = Avx512BW.PermuteVar32x16(s, i1);
            Vector512<short> s2 = Avx512BW.PermuteVar32x16(s, i2), s3 = Avx512BW.PermuteVar32x16(s, i3);
            Vector512<byte> q0 = Nibbles64(w + 16, shift), q1 = Nibbles64(w + 48, shift), q2 = Nibbles64(w + 80, shift), q3 = Nibbles64(w + 112, shift);
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a;
                float yd = *(float*)(a + Q8_KAligned.D);
                Vector512<int> sumi = Dot64(q0, yq, s0) + Dot64(q1, yq + 64, s1) + Dot64(q2, yq + 128, s2) + Dot64(q3, yq + 192, s3);
                acc[t] = Vector512.FusedMultiplyAdd(Vector512.Create(d * yd), Avx512F.ConvertToVector512Single(sumi), acc[t]);
                accMin[t] = Vector256.FusedMultiplyAdd(Vector256.Create(dmin * yd), MinTerm(minsPairs, a), accMin[t]);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = Vector512.Sum(acc[t]) - Vector256.Sum(accMin[t]);
    }

    // ---- packed prefill path (512-bit): 1 or 2 rows × 1 to 4 groups of 4 tokens (Q8_KAligned.Pack) ----
    //
    // Per chunk of 64 values a row's nibbles are unpacked once and shuffled 4 ways (vpshufd k), then meet every group:
    // 4 vpmaddubsw whose int16 lanes add without overflow (at most 8 products of 15 · 127), and one vpmaddwd by the
    // chunk's two scales. Per (row, 4 tokens, 256 values) that is 16 + 4 multiplies, plus 2 vpmaddwd for the mins and
    // the float scaling, where the 1-row × 8-token tile spends 8 + 1 per token.

    /// <summary>vpermw indices that give int16 pair 4L + t the min of sub-block L (j = 0) or 4 + L (j = 1), the 32 values its two block sums cover.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> PackedMinIndex(int j) => Vector512.Create(
        Vector256.Create(Vector128.Create((short)(4 * j)), Vector128.Create((short)(4 * j + 1))),
        Vector256.Create(Vector128.Create((short)(4 * j + 2)), Vector128.Create((short)(4 * j + 3))));

    /// <summary>One row's chunk against one group: lane 4L + t gets scale · (token t's dot over values 16L..16L+15).</summary>
    private struct Q4Chunk : IPackedChunk
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<int> Chunk(Vector512<byte> u0, Vector512<byte> u1, Vector512<byte> u2, Vector512<byte> u3,
            Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3, Vector512<short> scales) =>
            Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(u0, a0) + Avx512BW.MultiplyAddAdjacent(u1, a1)
                + (Avx512BW.MultiplyAddAdjacent(u2, a2) + Avx512BW.MultiplyAddAdjacent(u3, a3)), scales);
    }

    /// <summary>acc + dx · (d · sumi − dmin · Σ min · block sums) for one row and one group's block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PackedCombine(Vector512<int> sumi, byte* g, Vector512<float> d, Vector512<float> negDmin,
        Vector512<short> mins0, Vector512<short> mins1, Vector512<float> acc)
    {
        Vector512<int> m = Avx512BW.MultiplyAddAdjacent(Vector512.Load((short*)(g + Q8_KAligned.PackedBSums)), mins0)
            + Avx512BW.MultiplyAddAdjacent(Vector512.Load((short*)(g + Q8_KAligned.PackedBSums + 64)), mins1);
        Vector512<float> t = Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(sumi), d, Avx512F.ConvertToVector512Single(m) * negDmin);
        return Vector512.FusedMultiplyAdd(t, Vector512.Load((float*)(g + Q8_KAligned.PackedD)), acc);
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
        Vector512<ushort> shift = NibbleShift();
        Vector512<short> minIndex0 = PackedMinIndex(0), minIndex1 = PackedMinIndex(1), pair0 = PairIndex(0), two = Vector512.Create((short)2);
        Vector512<float>* acc = stackalloc Vector512<float>[8]; // row r, group g at 4r + g
        for (int i = 0; i < 8; i++) acc[i] = default;
        byte* w1 = w + wStride;
        for (int b = 0; b < n / 256; b++, w += BlockBytes, w1 += BlockBytes, packed += Q8_KAligned.PackedBlockBytes)
        {
            ScalesMins(w + 4, out ulong sc0, out ulong mn0);
            ulong sc1 = 0, mn1 = 0;
            if (TR.Count > 1) ScalesMins(w1 + 4, out sc1, out mn1);
            Vector512<short> s0 = Scales512(sc0), s1 = Scales512(sc1), pair = pair0;
            Vector512<int> i00 = default, i01 = default, i02 = default, i03 = default;
            Vector512<int> i10 = default, i11 = default, i12 = default, i13 = default;
            for (int c = 0; c < 4; c++, pair += two)
            {
                Vector512<int> x0 = Nibbles64(w + 16 + 32 * c, shift).AsInt32(), x1 = TR.Count > 1 ? Nibbles64(w1 + 16 + 32 * c, shift).AsInt32() : default;
                Vector512<short> su = Avx512BW.PermuteVar32x16(s0, pair), sv = TR.Count > 1 ? Avx512BW.PermuteVar32x16(s1, pair) : default;
                PackedLayout.Chunk<TR, TG, Q4Chunk>(x0, x1, su, sv, (sbyte*)(packed + 256 * c), groupStride,
                    ref i00, ref i01, ref i02, ref i03, ref i10, ref i11, ref i12, ref i13);
            }
            Vector128<float> dm = DMin(w);
            Vector512<float> d = Vector512.Create(dm.ToScalar()), negDmin = Vector512.Create(-dm.GetElement(1));
            Vector512<short> m = Scales512(mn0), m0 = Avx512BW.PermuteVar32x16(m, minIndex0), m1 = Avx512BW.PermuteVar32x16(m, minIndex1);
            acc[0] = PackedCombine(i00, packed, d, negDmin, m0, m1, acc[0]);
            if (TG.Count > 1) acc[1] = PackedCombine(i01, packed + groupStride, d, negDmin, m0, m1, acc[1]);
            if (TG.Count > 2) acc[2] = PackedCombine(i02, packed + 2 * groupStride, d, negDmin, m0, m1, acc[2]);
            if (TG.Count > 3) acc[3] = PackedCombine(i03, packed + 3 * groupStride, d, negDmin, m0, m1, acc[3]);
            if (TR.Count > 1)
            {
                dm = DMin(w1);
                d = Vector512.Create(dm.ToScalar());
                negDmin = Vector512.Create(-dm.GetElement(1));
                m = Scales512(mn1);
                m0 = Avx512BW.PermuteVar32x16(m, minIndex0);
                m1 = Avx512BW.PermuteVar32x16(m, minIndex1);
                acc[4] = PackedCombine(i10, packed, d, negDmin, m0, m1, acc[4]);
                if (TG.Count > 1) acc[5] = PackedCombine(i11, packed + groupStride, d, negDmin, m0, m1, acc[5]);
                if (TG.Count > 2) acc[6] = PackedCombine(i12, packed + 2 * groupStride, d, negDmin, m0, m1, acc[6]);
                if (TG.Count > 3) acc[7] = PackedCombine(i13, packed + 3 * groupStride, d, negDmin, m0, m1, acc[7]);
            }
        }
        for (int g = 0; g < TG.Count; g++)
        {
            for (int r = 0; r < TR.Count; r++) PackedLayout.Store(y + 4 * g * yStride + r, yStride, acc[4 * r + g]);
        }
    }

    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 => Q4KInterleaved.Use(Q8_KAligned.UsePacked(Q8_KAligned.Use(QuantBlockKernels.Create<Q4_KBlock>()) with
        {
            Dot = &Dot256, Dot2 = &Dot2_256, DotTile = &Dot8_512, TileTokens = 8, DotPacked = &DotPacked_512,
        })),
        SimdLevel.V256 => Q4KInterleaved.Use(Q8_KAligned.Use(QuantBlockKernels.Create<Q4_KBlock>()) with
        {
            Dot = &Dot256, Dot2 = &Dot2_256, DotTile = &Dot4_256, TileTokens = 4,
        }),
        SimdLevel.V128 or SimdLevel.V128Dot => Vector128Dots.WithKQuantDots(QuantBlockKernels.Create<Q4_KBlock>(), level),
        _ => QuantBlockKernels.Create<Q4_KBlock>(),
    };
}
