// Q5_K weights with Q8_K activations: Q4_K's scales, mins and nibbles (see Q4KKernels) plus a fifth bit per value,
// bit s of qh[l] for position l of sub-block s, added as 16 before the unsigned quants (0..31) meet vpmaddubsw.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q5KKernels
{
    private const int BlockBytes = 176, ActBlockBytes = 292;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MinTerm(Vector256<short> minsPairs, byte* act) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(act + 260)), minsPairs));

    /// <summary>Sub-block s's fifth bits as 16 or 0 (16-bit shifts: what crosses a byte is masked away).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> High256(Vector256<byte> qh, int s) =>
        Vector256.ShiftLeft(Vector256.ShiftRightLogical(qh.AsUInt16(), s), 4).AsByte() & Vector256.Create((byte)0x10);

    /// <summary>Sub-blocks 2g (low nibbles) and 2g+1 (high nibbles) of a block, 32 values (0..31) each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair256(byte* w, Vector256<byte> qh, int g, out Vector256<byte> lo, out Vector256<byte> hi)
    {
        var mask = Vector256.Create((byte)0x0F);
        Vector256<byte> q = Vector256.Load(w + 48 + 32 * g);
        lo = (q & mask) | High256(qh, 2 * g);
        hi = (Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & mask) | High256(qh, 2 * g + 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot32(Vector256<byte> q, sbyte* y, Vector256<short> scale) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(y)), scale);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        Vector256<float> acc = default, accMin = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, act += ActBlockBytes)
        {
            float yd = *(float*)act;
            Q4KKernels.ScalesMins(w + 4, out ulong sc, out ulong mn);
            accMin = Vector256.FusedMultiplyAdd(Vector256.Create(yd * HalfConvert.F16ToF32(*(ushort*)(w + 2))), MinTerm(Q4KKernels.MinsPairs(mn), act), accMin);
            Vector256<byte> qh = Vector256.Load(w + 16);
            Vector256<int> sumi = default;
            sbyte* y = (sbyte*)act + 4;
            for (int g = 0; g < 4; g++, sc >>= 16)
            {
                Pair256(w, qh, g, out var lo, out var hi);
                sumi += Dot32(lo, y + 64 * g, Vector256.Create((short)(sc & 0xFF))) + Dot32(hi, y + 64 * g + 32, Vector256.Create((short)((sc >> 8) & 0xFF)));
            }
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(yd * HalfConvert.F16ToF32(*(ushort*)w)), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc) - Vector256.Sum(accMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 4;
        Vector256<float>* acc = stackalloc Vector256<float>[2 * T];
        for (int t = 0; t < 2 * T; t++) acc[t] = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            float d = HalfConvert.F16ToF32(*(ushort*)w), dmin = HalfConvert.F16ToF32(*(ushort*)(w + 2));
            Q4KKernels.ScalesMins(w + 4, out ulong sc, out ulong mn);
            Vector256<short> minsPairs = Q4KKernels.MinsPairs(mn);
            Vector256<byte> qh = Vector256.Load(w + 16);
            Pair256(w, qh, 0, out var l0, out var h0);
            Pair256(w, qh, 1, out var l1, out var h1);
            Pair256(w, qh, 2, out var l2, out var h2);
            Pair256(w, qh, 3, out var l3, out var h3);
            Vector256<short> s0 = Vector256.Create((short)(sc & 0xFF)), s1 = Vector256.Create((short)((sc >> 8) & 0xFF));
            Vector256<short> s2 = Vector256.Create((short)((sc >> 16) & 0xFF)), s3 = Vector256.Create((short)((sc >> 24) & 0xFF));
            Vector256<short> s4 = Vector256.Create((short)((sc >> 32) & 0xFF)), s5 = Vector256.Create((short)((sc >> 40) & 0xFF));
            Vector256<short> s6 = Vector256.Create((short)((sc >> 48) & 0xFF)), s7 = Vector256.Create((short)(sc >> 56));
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a + 4;
                float yd = *(float*)a;
                Vector256<int> sumi = Dot32(l0, yq, s0) + Dot32(h0, yq + 32, s1) + Dot32(l1, yq + 64, s2) + Dot32(h1, yq + 96, s3)
                    + Dot32(l2, yq + 128, s4) + Dot32(h2, yq + 160, s5) + Dot32(l3, yq + 192, s6) + Dot32(h3, yq + 224, s7);
                acc[t] = Vector256.FusedMultiplyAdd(Vector256.Create(d * yd), Avx.ConvertToVector256Single(sumi), acc[t]);
                acc[T + t] = Vector256.FusedMultiplyAdd(Vector256.Create(dmin * yd), MinTerm(minsPairs, a), acc[T + t]);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = Vector256.Sum(acc[t]) - Vector256.Sum(acc[T + t]);
    }

    // ---- 512-bit: 64 values (sub-blocks 2g and 2g+1) per vector, as Q4KKernels ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> PairIndex(int g) =>
        Vector512.Create(Vector256.Create((short)(2 * g)), Vector256.Create((short)(2 * g + 1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Scales512(ulong sc) =>
        Sse41.ConvertToVector128Int16(Vector128.CreateScalar(sc).AsByte()).ToVector256Unsafe().ToVector512Unsafe();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Values64(byte* w, Vector512<ushort> qh, int g)
    {
        Vector256<byte> v = Vector256.Load(w + 48 + 32 * g);
        Vector512<byte> nib = Vector512.Create(v, Vector256.ShiftRightLogical(v.AsUInt16(), 4).AsByte()) & Vector512.Create((byte)0x0F);
        var shift = Vector512.Create(Vector256.Create((ushort)(2 * g)), Vector256.Create((ushort)(2 * g + 1)));
        return nib | (Vector512.ShiftLeft(Avx512BW.ShiftRightLogicalVariable(qh, shift), 4).AsByte() & Vector512.Create((byte)0x10));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Dot64(Vector512<byte> q, sbyte* y, Vector512<short> scales) =>
        Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, Vector512.Load(y)), scales);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<ushort> HighBits(byte* w)
    {
        Vector256<byte> qh = Vector256.Load(w + 16);
        return Vector512.Create(qh, qh).AsUInt16();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot512(byte* w, byte* act, int n)
    {
        Vector512<short> i0 = PairIndex(0), i1 = PairIndex(1), i2 = PairIndex(2), i3 = PairIndex(3);
        Vector512<float> acc = default;
        Vector256<float> accMin = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, act += ActBlockBytes)
        {
            float yd = *(float*)act;
            Q4KKernels.ScalesMins(w + 4, out ulong sc, out ulong mn);
            accMin = Vector256.FusedMultiplyAdd(Vector256.Create(yd * HalfConvert.F16ToF32(*(ushort*)(w + 2))), MinTerm(Q4KKernels.MinsPairs(mn), act), accMin);
            Vector512<short> s = Scales512(sc);
            Vector512<ushort> qh = HighBits(w);
            sbyte* y = (sbyte*)act + 4;
            Vector512<int> sumi = Dot64(Values64(w, qh, 0), y, Avx512BW.PermuteVar32x16(s, i0))
                + Dot64(Values64(w, qh, 1), y + 64, Avx512BW.PermuteVar32x16(s, i1))
                + Dot64(Values64(w, qh, 2), y + 128, Avx512BW.PermuteVar32x16(s, i2))
                + Dot64(Values64(w, qh, 3), y + 192, Avx512BW.PermuteVar32x16(s, i3));
            acc = Vector512.FusedMultiplyAdd(Vector512.Create(yd * HalfConvert.F16ToF32(*(ushort*)w)), Avx512F.ConvertToVector512Single(sumi), acc);
        }
        return Vector512.Sum(acc) - Vector256.Sum(accMin);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8_512(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 8;
        Vector512<short> i0 = PairIndex(0), i1 = PairIndex(1), i2 = PairIndex(2), i3 = PairIndex(3);
        Vector512<float>* acc = stackalloc Vector512<float>[T];
        Vector256<float>* accMin = stackalloc Vector256<float>[T];
        for (int t = 0; t < T; t++) { acc[t] = default; accMin[t] = default; }
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            float d = HalfConvert.F16ToF32(*(ushort*)w), dmin = HalfConvert.F16ToF32(*(ushort*)(w + 2));
            Q4KKernels.ScalesMins(w + 4, out ulong sc, out ulong mn);
            Vector256<short> minsPairs = Q4KKernels.MinsPairs(mn);
            Vector512<short> s = Scales512(sc);
            Vector512<short> s0 = Avx512BW.PermuteVar32x16(s, i0), s1 = Avx512BW.PermuteVar32x16(s, i1);
            Vector512<short> s2 = Avx512BW.PermuteVar32x16(s, i2), s3 = Avx512BW.PermuteVar32x16(s, i3);
            Vector512<ushort> qh = HighBits(w);
            Vector512<byte> q0 = Values64(w, qh, 0), q1 = Values64(w, qh, 1), q2 = Values64(w, qh, 2), q3 = Values64(w, qh, 3);
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a + 4;
                float yd = *(float*)a;
                Vector512<int> sumi = Dot64(q0, yq, s0) + Dot64(q1, yq + 64, s1) + Dot64(q2, yq + 128, s2) + Dot64(q3, yq + 192, s3);
                acc[t] = Vector512.FusedMultiplyAdd(Vector512.Create(d * yd), Avx512F.ConvertToVector512Single(sumi), acc[t]);
                accMin[t] = Vector256.FusedMultiplyAdd(Vector256.Create(dmin * yd), MinTerm(minsPairs, a), accMin[t]);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = Vector512.Sum(acc[t]) - Vector256.Sum(accMin[t]);
    }

    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 => QuantBlockKernels.Create<Q5_KBlock>() with { Dot = &Dot512, DotTile = &Dot8_512, TileTokens = 8 },
        SimdLevel.V256 => QuantBlockKernels.Create<Q5_KBlock>() with { Dot = &Dot256, DotTile = &Dot4_256, TileTokens = 4 },
        SimdLevel.V128 or SimdLevel.V128Dot => Vector128Dots.WithKQuantDots(QuantBlockKernels.Create<Q5_KBlock>(), level),
        _ => QuantBlockKernels.Create<Q5_KBlock>(),
    };
}
