// The 128-bit int8 dots (SimdLevel.V128, V128Dot) of Q8_0 and the K-quants: ARM64's paths (Apple Silicon, Graviton,
// Ampere), written on Vector128 with the int8 multiply as a type parameter:
//  - SignedDot (V128Dot, Dp): sdot, 16 int8 products summed in fours into 4 int32 lanes, one instruction.
//  - WideningDot (V128): smull/smull2 into int16, then sadalp into int32 (ggml's NEON path without dotprod); off ARM
//    the same sums from portable widening, so x86 machines test this level too.
// Each 16-lane multiply lies inside one scale group (Q8_0 block, K-quant sub-block), so any grouping of lanes into
// int32 sums gives the same block dot: the integer parts are exact and equal ggml's; only float summation order differs.
// Activations: Q8_0 in Q8_0Kernels' int8 layout, the K-quants in ggml's block_q8_K (d at 0, qs at 4, bsums at 260),
// quantized by the scalar level's functions.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>acc + Σ a·b over 16 int8 lanes, as 4 int32 partial sums (their grouping is the implementation's).</summary>
internal interface IInt8Dot
{
    static abstract Vector128<int> Dot(Vector128<int> acc, Vector128<sbyte> a, Vector128<sbyte> b);
}

/// <summary>Dp (ARMv8.2 dotprod): sdot.</summary>
internal readonly struct SignedDot : IInt8Dot
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Dot(Vector128<int> acc, Vector128<sbyte> a, Vector128<sbyte> b) => Dp.DotProduct(acc, a, b);
}

/// <summary>Products widened to int16 (|a·b| ≤ 128·127 fits), pairs added into int32.</summary>
internal readonly struct WideningDot : IInt8Dot
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> Dot(Vector128<int> acc, Vector128<sbyte> a, Vector128<sbyte> b)
    {
        if (AdvSimd.IsSupported)
        {
            acc = AdvSimd.AddPairwiseWideningAndAdd(acc, AdvSimd.MultiplyWideningLower(a.GetLower(), b.GetLower()));
            return AdvSimd.AddPairwiseWideningAndAdd(acc, AdvSimd.MultiplyWideningUpper(a, b));
        }
        var (a0, a1) = Vector128.Widen(a);
        var (b0, b1) = Vector128.Widen(b);
        var (p00, p01) = Vector128.Widen(a0 * b0);
        var (p10, p11) = Vector128.Widen(a1 * b1);
        return acc + ((p00 + p01) + (p10 + p11));
    }
}

internal static unsafe class Vector128Dots
{
    private const int QK = 32, Q8_0Bytes = 34;
    private const int QK_K = 256, Q8_KBytes = 292, Q8_KQs = 4, Q8_KBSums = 260;
    private const int Q4_KBytes = 144, Q5_KBytes = 176, Q6_KBytes = 210;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Half(byte* p) => HalfConvert.F16ToF32(*(ushort*)p);

    // ---- Q8_0 (activations in Q8_0Kernels' int8 layout: float d[nb], then the quants) ----

    /// <summary>As Q8_0Kernels.QuantizeActivationsScalar, bit for bit (Vector128.Round rounds half to even, as MathF.Round).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeQ8_0(float* x, byte* act, int n)
    {
        float* d = Q8_0Kernels.Scales(act);
        sbyte* q = Q8_0Kernels.Quants8(act, n);
        for (int b = 0; b < n / QK; b++, x += QK, q += QK)
        {
            Vector128<float> m = Vector128<float>.Zero;
            for (int j = 0; j < QK; j += 4) m = Vector128.Max(m, Vector128.Abs(Vector128.Load(x + j)));
            float amax = MathF.Max(MathF.Max(m[0], m[1]), MathF.Max(m[2], m[3]));
            d[b] = HalfConvert.RoundToF16(amax / 127f);
            var id = Vector128.Create(amax != 0 ? 127f / amax : 0f);
            for (int j = 0; j < QK; j += 16)
            {
                Vector128<int> i0 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + j) * id));
                Vector128<int> i1 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + j + 4) * id));
                Vector128<int> i2 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + j + 8) * id));
                Vector128<int> i3 = Vector128.ConvertToInt32(Vector128.Round(Vector128.Load(x + j + 12) * id));
                Vector128.Narrow(Vector128.Narrow(i0, i1), Vector128.Narrow(i2, i3)).Store(q + j);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotQ8_0<TD>(byte* w, byte* act, int n) where TD : struct, IInt8Dot
    {
        float* xd = Q8_0Kernels.Scales(act);
        sbyte* xq = Q8_0Kernels.Quants8(act, n);
        Vector128<float> acc0 = default, acc1 = default;
        int nb = n / QK, b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * Q8_0Bytes, xq += 2 * QK)
        {
            Vector128<int> s0 = TD.Dot(TD.Dot(default, Vector128.Load((sbyte*)w + 2), Vector128.Load(xq)), Vector128.Load((sbyte*)w + 18), Vector128.Load(xq + 16));
            Vector128<int> s1 = TD.Dot(TD.Dot(default, Vector128.Load((sbyte*)w + 36), Vector128.Load(xq + 32)), Vector128.Load((sbyte*)w + 52), Vector128.Load(xq + 48));
            acc0 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s0), Vector128.Create(Half(w) * xd[b]), acc0);
            acc1 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s1), Vector128.Create(Half(w + Q8_0Bytes) * xd[b + 1]), acc1);
        }
        if (b < nb)
        {
            Vector128<int> s0 = TD.Dot(TD.Dot(default, Vector128.Load((sbyte*)w + 2), Vector128.Load(xq)), Vector128.Load((sbyte*)w + 18), Vector128.Load(xq + 16));
            acc0 = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(s0), Vector128.Create(Half(w) * xd[b]), acc0);
        }
        return Vector128.Sum(acc0 + acc1);
    }

    /// <summary>One weight row against 4 tokens: each weight block loaded once for the 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4Q8_0<TD>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TD : struct, IInt8Dot
    {
        byte* a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        float* d0 = Q8_0Kernels.Scales(act), d1 = Q8_0Kernels.Scales(a1), d2 = Q8_0Kernels.Scales(a2), d3 = Q8_0Kernels.Scales(a3);
        sbyte* q0 = Q8_0Kernels.Quants8(act, n), q1 = Q8_0Kernels.Quants8(a1, n), q2 = Q8_0Kernels.Quants8(a2, n), q3 = Q8_0Kernels.Quants8(a3, n);
        Vector128<float> c0 = default, c1 = default, c2 = default, c3 = default;
        for (int b = 0, o = 0; b < n / QK; b++, o += QK, w += Q8_0Bytes)
        {
            Vector128<sbyte> lo = Vector128.Load((sbyte*)w + 2), hi = Vector128.Load((sbyte*)w + 18);
            float dw = Half(w);
            c0 = Vector128.FusedMultiplyAdd(BlockDot<TD>(lo, hi, q0 + o), Vector128.Create(dw * d0[b]), c0);
            c1 = Vector128.FusedMultiplyAdd(BlockDot<TD>(lo, hi, q1 + o), Vector128.Create(dw * d1[b]), c1);
            c2 = Vector128.FusedMultiplyAdd(BlockDot<TD>(lo, hi, q2 + o), Vector128.Create(dw * d2[b]), c2);
            c3 = Vector128.FusedMultiplyAdd(BlockDot<TD>(lo, hi, q3 + o), Vector128.Create(dw * d3[b]), c3);
        }
        y[0] = Vector128.Sum(c0);
        y[yStride] = Vector128.Sum(c1);
        y[2 * yStride] = Vector128.Sum(c2);
        y[3 * yStride] = Vector128.Sum(c3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> BlockDot<TD>(Vector128<sbyte> lo, Vector128<sbyte> hi, sbyte* x) where TD : struct, IInt8Dot =>
        Vector128.ConvertToSingle(TD.Dot(TD.Dot(default, lo, Vector128.Load(x)), hi, Vector128.Load(x + 16)));

    // ---- K-quants (activations in ggml's block_q8_K) ----

    /// <summary>The sum of 32 products of one K-quant sub-block: two 16-lane multiplies.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot32<TD>(Vector128<sbyte> a0, Vector128<sbyte> a1, sbyte* y) where TD : struct, IInt8Dot =>
        TD.Dot(TD.Dot(default, a0, Vector128.Load(y)), a1, Vector128.Load(y + 16));

    /// <summary>Σ_s min_s · (the activations' sum over sub-block s of 32), from the 16 block sums of 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int MinsDot(ulong mins, short* bsums)
    {
        int sum = 0;
        for (int s = 0; s < 8; s++) sum += (int)((mins >> (8 * s)) & 0xFF) * (bsums[2 * s] + bsums[2 * s + 1]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Scale(ulong scales, int s) => Vector128.Create((int)((scales >> (8 * s)) & 0xFF));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotQ4_K<TD>(byte* w, byte* act, int n) where TD : struct, IInt8Dot
    {
        var m4 = Vector128.Create((byte)0x0F);
        Vector128<float> acc = default;
        float mins = 0;
        for (int i = 0; i < n / QK_K; i++, w += Q4_KBytes, act += Q8_KBytes)
        {
            float dy = *(float*)act;
            Q4KKernels.ScalesMins(w + 4, out ulong sc, out ulong mn);
            mins += dy * Half(w + 2) * MinsDot(mn, (short*)(act + Q8_KBSums));
            byte* q = w + 16;
            sbyte* y = (sbyte*)act + Q8_KQs;
            Vector128<int> sumi = default;
            for (int j = 0; j < 4; j++, q += 32, y += 64)
            {
                Vector128<byte> v0 = Vector128.Load(q), v1 = Vector128.Load(q + 16);
                // sub-block 2j: the low nibbles of the 32 bytes; 2j + 1: the high ones
                sumi += Dot32<TD>((v0 & m4).AsSByte(), (v1 & m4).AsSByte(), y) * Scale(sc, 2 * j);
                sumi += Dot32<TD>(Vector128.ShiftRightLogical(v0, 4).AsSByte(), Vector128.ShiftRightLogical(v1, 4).AsSByte(), y + 32) * Scale(sc, 2 * j + 1);
            }
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sumi), Vector128.Create(dy * Half(w)), acc);
        }
        return Vector128.Sum(acc) - mins;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotQ5_K<TD>(byte* w, byte* act, int n) where TD : struct, IInt8Dot
    {
        var m4 = Vector128.Create((byte)0x0F);
        var b16 = Vector128.Create((byte)16);
        Vector128<float> acc = default;
        float mins = 0;
        for (int i = 0; i < n / QK_K; i++, w += Q5_KBytes, act += Q8_KBytes)
        {
            float dy = *(float*)act;
            Q4KKernels.ScalesMins(w + 4, out ulong sc, out ulong mn);
            mins += dy * Half(w + 2) * MinsDot(mn, (short*)(act + Q8_KBSums));
            Vector128<byte> h0 = Vector128.Load(w + 16), h1 = Vector128.Load(w + 32);
            byte* q = w + 48;
            sbyte* y = (sbyte*)act + Q8_KQs;
            Vector128<int> sumi = default;
            for (int j = 0; j < 4; j++, q += 32, y += 64)
            {
                Vector128<byte> v0 = Vector128.Load(q), v1 = Vector128.Load(q + 16);
                // the fifth bit of sub-block s is bit s of the qh byte of the same position
                var bl = Vector128.Create((byte)(1 << (2 * j)));
                var bh = Vector128.Create((byte)(2 << (2 * j)));
                Vector128<byte> l0 = (v0 & m4) | (Vector128.Equals(h0 & bl, bl) & b16), l1 = (v1 & m4) | (Vector128.Equals(h1 & bl, bl) & b16);
                Vector128<byte> u0 = Vector128.ShiftRightLogical(v0, 4) | (Vector128.Equals(h0 & bh, bh) & b16);
                Vector128<byte> u1 = Vector128.ShiftRightLogical(v1, 4) | (Vector128.Equals(h1 & bh, bh) & b16);
                sumi += Dot32<TD>(l0.AsSByte(), l1.AsSByte(), y) * Scale(sc, 2 * j);
                sumi += Dot32<TD>(u0.AsSByte(), u1.AsSByte(), y + 32) * Scale(sc, 2 * j + 1);
            }
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sumi), Vector128.Create(dy * Half(w)), acc);
        }
        return Vector128.Sum(acc) - mins;
    }

    /// <summary>Q6_K: 6-bit values (4 low bits in ql, 2 high in qh) minus 32, one int8 scale per 16 values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotQ6_K<TD>(byte* w, byte* act, int n) where TD : struct, IInt8Dot
    {
        var m4 = Vector128.Create((byte)0x0F);
        var m3 = Vector128.Create((byte)0x03);
        var o32 = Vector128.Create((sbyte)32);
        Vector128<float> acc = default;
        for (int i = 0; i < n / QK_K; i++, w += Q6_KBytes, act += Q8_KBytes)
        {
            sbyte* sc = (sbyte*)w + 192;
            sbyte* y = (sbyte*)act + Q8_KQs;
            Vector128<int> sumi = default;
            for (int half = 0; half < 2; half++, y += 128, sc += 8)
            {
                byte* ql = w + 64 * half, qh = w + 128 + 32 * half;
                for (int l = 0; l < 32; l += 16)
                {
                    Vector128<byte> a = Vector128.Load(ql + l), b = Vector128.Load(ql + l + 32), h = Vector128.Load(qh + l);
                    // values l.. of the four 32-value quarters of this half: a low, b low, a high, b high nibbles
                    Vector128<sbyte> q0 = ((a & m4) | Vector128.ShiftLeft(h & m3, 4)).AsSByte() - o32;
                    Vector128<sbyte> q1 = ((b & m4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 2) & m3, 4)).AsSByte() - o32;
                    Vector128<sbyte> q2 = (Vector128.ShiftRightLogical(a, 4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 4) & m3, 4)).AsSByte() - o32;
                    Vector128<sbyte> q3 = (Vector128.ShiftRightLogical(b, 4) | Vector128.ShiftLeft(Vector128.ShiftRightLogical(h, 6), 4)).AsSByte() - o32;
                    int g = l / 16;
                    sumi += TD.Dot(default, q0, Vector128.Load(y + l)) * Vector128.Create((int)sc[g]);
                    sumi += TD.Dot(default, q1, Vector128.Load(y + 32 + l)) * Vector128.Create((int)sc[2 + g]);
                    sumi += TD.Dot(default, q2, Vector128.Load(y + 64 + l)) * Vector128.Create((int)sc[4 + g]);
                    sumi += TD.Dot(default, q3, Vector128.Load(y + 96 + l)) * Vector128.Create((int)sc[6 + g]);
                }
            }
            acc = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(sumi), Vector128.Create(*(float*)act * Half(w + 208)), acc);
        }
        return Vector128.Sum(acc);
    }

    /// <summary>A single-token dot run for each of 4 tokens (a weight row of a few KB stays in L1 across them).</summary>
    public static void Dot4<TK>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where TK : struct, IRowDot
    {
        for (int t = 0; t < 4; t++) y[t * yStride] = TK.Dot(w, act + t * actStride, n);
    }

    /// <summary>The K-quant entries of a table at one 128-bit level: the scalar table's layout with these dots.</summary>
    public static TypeKernels WithKQuantDots(in TypeKernels scalar, SimdLevel level) => (scalar.Type, level) switch
    {
        (GgmlType.Q4_K, SimdLevel.V128Dot) => scalar with { Dot = &DotQ4_K<SignedDot>, DotTile = &Dot4<Q4_KRow<SignedDot>> },
        (GgmlType.Q4_K, _) => scalar with { Dot = &DotQ4_K<WideningDot>, DotTile = &Dot4<Q4_KRow<WideningDot>> },
        (GgmlType.Q5_K, SimdLevel.V128Dot) => scalar with { Dot = &DotQ5_K<SignedDot>, DotTile = &Dot4<Q5_KRow<SignedDot>> },
        (GgmlType.Q5_K, _) => scalar with { Dot = &DotQ5_K<WideningDot>, DotTile = &Dot4<Q5_KRow<WideningDot>> },
        (GgmlType.Q6_K, SimdLevel.V128Dot) => scalar with { Dot = &DotQ6_K<SignedDot>, DotTile = &Dot4<Q6_KRow<SignedDot>> },
        (GgmlType.Q6_K, _) => scalar with { Dot = &DotQ6_K<WideningDot>, DotTile = &Dot4<Q6_KRow<WideningDot>> },
        _ => throw new ArgumentException($"no 128-bit dot for {scalar.Type}"),
    };

    /// <summary>The Q8_0 entry at one 128-bit level (the scalar table's int8 activation layout).</summary>
    public static TypeKernels WithQ8_0Dots(in TypeKernels scalar, SimdLevel level) => level == SimdLevel.V128Dot
        ? scalar with { QuantizeActivations = &QuantizeQ8_0, Dot = &DotQ8_0<SignedDot>, DotTile = &Dot4Q8_0<SignedDot>, TileTokens = 4 }
        : scalar with { QuantizeActivations = &QuantizeQ8_0, Dot = &DotQ8_0<WideningDot>, DotTile = &Dot4Q8_0<WideningDot>, TileTokens = 4 };

    internal interface IRowDot
    {
        static abstract float Dot(byte* w, byte* act, int n);
    }

    private readonly struct Q4_KRow<TD> : IRowDot where TD : struct, IInt8Dot
    {
        public static float Dot(byte* w, byte* act, int n) => DotQ4_K<TD>(w, act, n);
    }

    private readonly struct Q5_KRow<TD> : IRowDot where TD : struct, IInt8Dot
    {
        public static float Dot(byte* w, byte* act, int n) => DotQ5_K<TD>(w, act, n);
    }

    private readonly struct Q6_KRow<TD> : IRowDot where TD : struct, IInt8Dot
    {
        public static float Dot(byte* w, byte* act, int n) => DotQ6_K<TD>(w, act, n);
    }
}
