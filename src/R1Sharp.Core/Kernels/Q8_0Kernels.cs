// Q8_0: blocks of 32 values, an F16 scale d then 32 int8 (block_q8_0, 34 bytes); value = d * q.
// Reference for QuantizeRowQ8_0Reference / DequantizeRowQ8_0 / VecDotQ8_0Q8_0Reference, and the SIMD dot products.
//
// Activations are quantized as ggml-cpu's x86 quantize_row_q8_0 does (id = 127/amax, round to nearest even), and kept
// in an internal layout: float d[nb] (the F16-rounded scales), then the quants, 64-byte aligned.
//  - scalar and 256-bit: int8 quants; the dot is ggml's AVX2 sign trick (|w| unsigned times sign(w)·x signed, vpmaddubsw,
//    then vpmaddwd by ones): 6 ops per block; with AVX-VNNI one vpdpbusd replaces the two multiplies (that branch is not
//    exercised on CPUs without AVX-VNNI, such as Zen 4, whose AVX512-VNNI .NET 10 does not expose).
//  - 512-bit: the quants twice, as int8 then widened to int16. The token tile (prefill) reads the int16 copy: one
//    sign-extending load of the weight block, then one vpmaddwd, cvt and fma per token (.NET 10 exposes no AVX512-VNNI
//    vpdpbusd, and zmm has no vpsignb). The single-token dot (decode) reads the int8 copy and widens both sides, which
//    keeps the activations of a long row (8960 values) in L1 while the weights stream past.
//  The weights of an in-memory model are rewritten at load into groups of 16 rows (Q8_0Interleaved), whose kernel
//  reads the int16 copy for every batch size; the kernels here serve mapped files and matrices kept in ggml's layout.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q8_0Kernels
{
    public const int QK = 32;
    public const int BlockBytes = 34;

    // ---- ggml block layout ----

    /// <summary>ggml's quantize_row_q8_0_ref (weights): d = amax/127, q = roundf(x * (1/d)) (halves away from zero).</summary>
    public static void QuantizeRowQ8_0Reference(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / QK; b++, x += QK, y += BlockBytes)
        {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / 127;
            float id = d != 0 ? 1.0f / d : 0.0f;
            *(ushort*)y = HalfConvert.F32ToF16(d);
            for (int j = 0; j < QK; j++) ((sbyte*)(y + 2))[j] = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>ggml-cpu's x86 quantize_row_q8_0 (activations): d = amax/127, q = round-to-nearest-even(x * (127/amax)).</summary>
    public static void QuantizeRowQ8_0(float* x, byte* y, int n)
    {
        for (int b = 0; b < n / QK; b++, x += QK, y += BlockBytes)
        {
            float amax = AbsMax(x);
            *(ushort*)y = HalfConvert.F32ToF16(amax / 127f);
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < QK; j++) ((sbyte*)(y + 2))[j] = (sbyte)MathF.Round(x[j] * id);
        }
    }

    public static void DequantizeRowQ8_0(byte* x, float* y, int n)
    {
        for (int b = 0; b < n / QK; b++, x += BlockBytes, y += QK)
        {
            float d = HalfConvert.F16ToF32(*(ushort*)x);
            for (int j = 0; j < QK; j++) y[j] = d * ((sbyte*)(x + 2))[j];
        }
    }

    /// <summary>ggml's scalar ggml_vec_dot_q8_0_q8_0: per block an integer dot, times d_x * d_y, summed in float.</summary>
    public static float VecDotQ8_0Q8_0Reference(int n, byte* x, byte* y)
    {
        float sum = 0;
        for (int b = 0; b < n / QK; b++, x += BlockBytes, y += BlockBytes)
        {
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += ((sbyte*)(x + 2))[j] * ((sbyte*)(y + 2))[j];
            sum += sumi * (HalfConvert.F16ToF32(*(ushort*)x) * HalfConvert.F16ToF32(*(ushort*)y));
        }
        return sum;
    }

    private static void DequantizeRowQ8_0_512(byte* x, float* y, int n)
    {
        for (int b = 0; b < n / QK; b++, x += BlockBytes, y += QK)
        {
            var d = Vector512.Create(HalfConvert.F16ToF32(*(ushort*)x));
            (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)x + 2))) * d).Store(y);
            (Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)x + 18))) * d).Store(y + 16);
        }
    }

    private static void DequantizeRowQ8_0_256(byte* x, float* y, int n)
    {
        for (int b = 0; b < n / QK; b++, x += BlockBytes, y += QK)
        {
            var d = Vector256.Create(HalfConvert.F16ToF32(*(ushort*)x));
            for (int j = 0; j < QK; j += 8)
            {
                (Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32((sbyte*)x + 2 + j)) * d).Store(y + j);
            }
        }
    }

    // ---- activation layouts: float d[nb] | quants (int8, or int16 for the 512-bit path), each part 64-byte aligned ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long ScalesBytes(int n) => ((long)(n / QK) * sizeof(float) + 63) & ~63L;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long ActivationRowBytes8(int n) => ScalesBytes(n) + (((long)n + 63) & ~63L);

    public static long ActivationRowBytes512(int n) => ActivationRowBytes8(n) + (((long)n * sizeof(short) + 63) & ~63L);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float* Scales(byte* act) => (float*)act;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static sbyte* Quants8(byte* act, int n) => (sbyte*)(act + ScalesBytes(n));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static short* Quants16(byte* act, int n) => (short*)(act + ActivationRowBytes8(n));

    private static void ActivationsToFloat8(byte* act, float* y, int n)
    {
        for (int i = 0; i < n; i++) y[i] = Scales(act)[i / QK] * Quants8(act, n)[i];
    }

    /// <summary>NaN marks a value whose int8 and int16 copies disagree.</summary>
    private static void ActivationsToFloat512(byte* act, float* y, int n)
    {
        for (int i = 0; i < n; i++)
        {
            short q = Quants16(act, n)[i];
            y[i] = q == Quants8(act, n)[i] ? Scales(act)[i / QK] * q : float.NaN;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float AbsMax(float* x)
    {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        return amax;
    }

    /// <summary>Same rounding as <see cref="QuantizeRowQ8_0"/>, into the int8 activation layout.</summary>
    public static void QuantizeActivationsScalar(float* x, byte* act, int n)
    {
        float* d = Scales(act);
        sbyte* q = Quants8(act, n);
        for (int b = 0; b < n / QK; b++, x += QK, q += QK)
        {
            float amax = AbsMax(x);
            d[b] = HalfConvert.RoundToF16(amax / 127f);
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < QK; j++) q[j] = (sbyte)MathF.Round(x[j] * id);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeActivations256(float* x, byte* act, int n)
    {
        float* d = Scales(act);
        sbyte* q = Quants8(act, n);
        for (int b = 0; b < n / QK; b++, x += QK, q += QK)
        {
            Vector256<float> v0 = Vector256.Load(x), v1 = Vector256.Load(x + 8), v2 = Vector256.Load(x + 16), v3 = Vector256.Load(x + 24);
            Vector256<float> m = Vector256.MaxNative(Vector256.MaxNative(Vector256.Abs(v0), Vector256.Abs(v1)),
                Vector256.MaxNative(Vector256.Abs(v2), Vector256.Abs(v3)));
            Vector128<float> m4 = Vector128.MaxNative(m.GetLower(), m.GetUpper());
            float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
            d[b] = HalfConvert.RoundToF16(amax / 127f);
            var id = Vector256.Create(amax != 0 ? 127f / amax : 0f);
            // vcvtps2dq rounds to nearest even, as ggml's _mm256_round_ps(_MM_ROUND_NEAREST) + _mm256_cvtps_epi32
            Vector256<int> i0 = Avx.ConvertToVector256Int32(v0 * id), i1 = Avx.ConvertToVector256Int32(v1 * id);
            Vector256<int> i2 = Avx.ConvertToVector256Int32(v2 * id), i3 = Avx.ConvertToVector256Int32(v3 * id);
            Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuantizeActivations512(float* x, byte* act, int n)
    {
        float* d = Scales(act);
        short* q = Quants16(act, n);
        sbyte* q8 = Quants8(act, n);
        for (int b = 0; b < n / QK; b++, x += QK, q += QK, q8 += QK)
        {
            Vector512<float> v0 = Vector512.Load(x), v1 = Vector512.Load(x + 16);
            Vector512<float> m = Vector512.MaxNative(Vector512.Abs(v0), Vector512.Abs(v1));
            Vector256<float> m8 = Vector256.MaxNative(m.GetLower(), m.GetUpper());
            Vector128<float> m4 = Vector128.MaxNative(m8.GetLower(), m8.GetUpper());
            float amax = MathF.Max(MathF.Max(m4[0], m4[1]), MathF.Max(m4[2], m4[3]));
            d[b] = HalfConvert.RoundToF16(amax / 127f);
            var id = Vector512.Create(amax != 0 ? 127f / amax : 0f);
            Vector512<int> i0 = Avx512F.ConvertToVector512Int32(v0 * id), i1 = Avx512F.ConvertToVector512Int32(v1 * id);
            Avx512F.ConvertToVector256Int16(i0).Store(q);
            Avx512F.ConvertToVector256Int16(i1).Store(q + 16);
            Vector256.Create(Avx512F.ConvertToVector128SByte(i0), Avx512F.ConvertToVector128SByte(i1)).Store(q8);
        }
    }

    // ---- dot products: weight row (block_q8_0) with activation rows (internal layout) ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float WeightScale(byte* block) => HalfConvert.F16ToF32(*(ushort*)block);

    public static float DotScalar(byte* w, byte* act, int n)
    {
        float* xd = Scales(act);
        sbyte* xq = Quants8(act, n);
        float sum = 0;
        for (int b = 0; b < n / QK; b++, w += BlockBytes, xq += QK)
        {
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += ((sbyte*)(w + 2))[j] * xq[j];
            sum += sumi * (WeightScale(w) * xd[b]);
        }
        return sum;
    }

    public static void Dot4Scalar(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        for (int t = 0; t < 4; t++) y[t * yStride] = DotScalar(w, act + t * actStride, n);
    }

    /// <summary>
    /// Σ w·x of one block as 8 int32 partial sums (as floats) from |w| (unsigned) and sign(x, w) (signed): one vpdpbusd
    /// where AVX-VNNI is present, else vpmaddubsw then vpmaddwd by ones (|w| ≤ 128, |x| ≤ 127: no int16 saturation).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDot256(Vector256<sbyte> w, Vector256<byte> absW, sbyte* x)
    {
        Vector256<sbyte> signedX = Avx2.Sign(Vector256.Load(x), w);
        Vector256<int> sums = AvxVnni.IsSupported
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, absW, signedX)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(absW, signedX), Vector256.Create((short)1));
        return Avx.ConvertToVector256Single(sums);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        float* xd = Scales(act);
        sbyte* xq = Quants8(act, n);
        int nb = n / QK;
        Vector256<float> acc0 = default, acc1 = default;
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, xq += 2 * QK)
        {
            Vector256<sbyte> w0 = Vector256.Load((sbyte*)(w + 2)), w1 = Vector256.Load((sbyte*)(w + BlockBytes + 2));
            acc0 = Vector256.FusedMultiplyAdd(BlockDot256(w0, Avx2.Abs(w0), xq), Vector256.Create(WeightScale(w) * xd[b]), acc0);
            acc1 = Vector256.FusedMultiplyAdd(BlockDot256(w1, Avx2.Abs(w1), xq + QK),
                Vector256.Create(WeightScale(w + BlockBytes) * xd[b + 1]), acc1);
        }
        if (b < nb)
        {
            Vector256<sbyte> w0 = Vector256.Load((sbyte*)(w + 2));
            acc0 = Vector256.FusedMultiplyAdd(BlockDot256(w0, Avx2.Abs(w0), xq), Vector256.Create(WeightScale(w) * xd[b]), acc0);
        }
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        float* d0 = Scales(a0), d1 = Scales(a1), d2 = Scales(a2), d3 = Scales(a3);
        sbyte* q0 = Quants8(a0, n), q1 = Quants8(a1, n), q2 = Quants8(a2, n), q3 = Quants8(a3, n);
        int nb = n / QK;
        float* s = stackalloc float[4 * 8];
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        for (int b = 0; b < nb; b += 8)
        {
            int m = Math.Min(8, nb - b);
            if (m == 8)
            {
                Vector256<float> dw = WeightScales8(w);
                (dw * Vector256.Load(d0 + b)).Store(s);
                (dw * Vector256.Load(d1 + b)).Store(s + 8);
                (dw * Vector256.Load(d2 + b)).Store(s + 16);
                (dw * Vector256.Load(d3 + b)).Store(s + 24);
            }
            else
            {
                for (int j = 0; j < m; j++)
                {
                    float dw = WeightScale(w + j * BlockBytes);
                    s[j] = dw * d0[b + j];
                    s[8 + j] = dw * d1[b + j];
                    s[16 + j] = dw * d2[b + j];
                    s[24 + j] = dw * d3[b + j];
                }
            }
            for (int j = 0, o = b * QK; j < m; j++, o += QK, w += BlockBytes)
            {
                Vector256<sbyte> wq = Vector256.Load((sbyte*)(w + 2));
                Vector256<byte> absW = Avx2.Abs(wq);
                acc0 = Vector256.FusedMultiplyAdd(BlockDot256(wq, absW, q0 + o), Vector256.Create(s[j]), acc0);
                acc1 = Vector256.FusedMultiplyAdd(BlockDot256(wq, absW, q1 + o), Vector256.Create(s[8 + j]), acc1);
                acc2 = Vector256.FusedMultiplyAdd(BlockDot256(wq, absW, q2 + o), Vector256.Create(s[16 + j]), acc2);
                acc3 = Vector256.FusedMultiplyAdd(BlockDot256(wq, absW, q3 + o), Vector256.Create(s[24 + j]), acc3);
            }
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }

    /// <summary>Σ w·x of one block as 16 int32 partial sums: int8 weights sign-extended to int16, one vpmaddwd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockDot512(Vector512<short> w, short* x) =>
        Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(w, Vector512.Load(x)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> WeightQuants512(byte* block) => Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(block + 2)));

    /// <summary>Σ w·x of one block as 16 int32 partial sums (as floats), both sides sign-extended from int8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> BlockDot512(byte* block, sbyte* x) =>
        Avx512F.ConvertToVector512Single(Avx512BW.MultiplyAddAdjacent(WeightQuants512(block),
            Avx512BW.ConvertToVector512Int16(Vector256.Load(x))));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot512(byte* w, byte* act, int n)
    {
        float* xd = Scales(act);
        sbyte* xq = Quants8(act, n);
        int nb = n / QK;
        Vector512<float> acc0 = default, acc1 = default;
        int b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, xq += 2 * QK)
        {
            acc0 = Vector512.FusedMultiplyAdd(BlockDot512(w, xq), Vector512.Create(WeightScale(w) * xd[b]), acc0);
            acc1 = Vector512.FusedMultiplyAdd(BlockDot512(w + BlockBytes, xq + QK),
                Vector512.Create(WeightScale(w + BlockBytes) * xd[b + 1]), acc1);
        }
        if (b < nb)
        {
            acc0 = Vector512.FusedMultiplyAdd(BlockDot512(w, xq), Vector512.Create(WeightScale(w) * xd[b]), acc0);
        }
        return Vector512.Sum(acc0 + acc1);
    }

    /// <summary>One weight row against 8 tokens: each sign-extended weight block feeds 8 vpmaddwd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8_512(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 8;
        int nb = n / QK;
        short* q = Quants16(act, n);
        long qStride = actStride / sizeof(short);
        // combined scales d_w * d_x of 16 blocks for each token, so the loop broadcasts them straight from memory
        float* s = stackalloc float[T * 16];
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        Vector512<float> acc4 = default, acc5 = default, acc6 = default, acc7 = default;
        for (int b = 0; b < nb; b += 16)
        {
            int m = Math.Min(16, nb - b);
            if (m == 16)
            {
                Vector512<float> dw = WeightScales16(w);
                for (int t = 0; t < T; t++) (dw * Vector512.Load(Scales(act + t * actStride) + b)).Store(s + 16 * t);
            }
            else
            {
                for (int j = 0; j < m; j++)
                {
                    float dw = WeightScale(w + j * BlockBytes);
                    for (int t = 0; t < T; t++) s[16 * t + j] = dw * Scales(act + t * actStride)[b + j];
                }
            }
            for (int j = 0, o = b * QK; j < m; j++, o += QK, w += BlockBytes)
            {
                Vector512<short> wq = WeightQuants512(w);
                short* qo = q + o;
                acc0 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo), Vector512.Create(s[j]), acc0);
                acc1 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + qStride), Vector512.Create(s[16 + j]), acc1);
                acc2 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + 2 * qStride), Vector512.Create(s[32 + j]), acc2);
                acc3 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + 3 * qStride), Vector512.Create(s[48 + j]), acc3);
                acc4 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + 4 * qStride), Vector512.Create(s[64 + j]), acc4);
                acc5 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + 5 * qStride), Vector512.Create(s[80 + j]), acc5);
                acc6 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + 6 * qStride), Vector512.Create(s[96 + j]), acc6);
                acc7 = Vector512.FusedMultiplyAdd(BlockDot512(wq, qo + 7 * qStride), Vector512.Create(s[112 + j]), acc7);
            }
        }
        y[0] = Vector512.Sum(acc0);
        y[yStride] = Vector512.Sum(acc1);
        y[2 * yStride] = Vector512.Sum(acc2);
        y[3 * yStride] = Vector512.Sum(acc3);
        y[4 * yStride] = Vector512.Sum(acc4);
        y[5 * yStride] = Vector512.Sum(acc5);
        y[6 * yStride] = Vector512.Sum(acc6);
        y[7 * yStride] = Vector512.Sum(acc7);
    }

    // ---- packed prefill path: 4 tokens interleaved per 32-bit lane, so one cvt + fma serves 4 (row, token) pairs ----
    //
    // A group holds 4 activation rows: float d[nb][4] (the scales of the 4 tokens per block), then per block 4 vectors of
    // 32 int16: in vector k, 32-bit lane 4L + t holds token t's int16 pair 4L + k of the block. A weight block widened to
    // int16 and shuffled with vpshufd(k) (pair 4L + k repeated over 128-bit lane L) meets all 4 tokens in one vpmaddwd,
    // and the 4 products summed leave each lane 4L + t with a quarter of token t's block dot. Per (row, 4 tokens, block):
    // 4 vpmaddwd, 3 adds, one cvt, one mul and one fma, where the 1-row × 8-token tile spends a vpmaddwd, cvt and fma
    // per (row, token): the multiply ports that bound it do 6 instead of 8 operations per 4 pairs.

    public const int PackTokens = 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long PackedScalesBytes(int n) => ((long)(n / QK) * PackTokens * sizeof(float) + 63) & ~63L;

    public static long PackedGroupBytes512(int n) => PackedScalesBytes(n) + (long)(n / QK) * PackTokens * QK * sizeof(short);

    /// <summary>Repacks 4 activation rows (the 512-bit layout) actStride bytes apart into one group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackActivations512(byte* act, long actStride, int n, byte* dst)
    {
        int nb = n / QK;
        float* d = (float*)dst;
        Vector512<int>* v = (Vector512<int>*)(dst + PackedScalesBytes(n));
        byte* a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        short* q0 = Quants16(act, n), q1 = Quants16(a1, n), q2 = Quants16(a2, n), q3 = Quants16(a3, n);
        for (int b = 0; b < nb; b++, v += 4)
        {
            d[4 * b] = Scales(act)[b];
            d[4 * b + 1] = Scales(a1)[b];
            d[4 * b + 2] = Scales(a2)[b];
            d[4 * b + 3] = Scales(a3)[b];
            PackedLayout.Interleave4(Vector512.Load(q0 + b * QK).AsInt32(), Vector512.Load(q1 + b * QK).AsInt32(),
                Vector512.Load(q2 + b * QK).AsInt32(), Vector512.Load(q3 + b * QK).AsInt32(), v);
        }
    }

    /// <summary>Σ over one block of 4 tokens: lane 4L + t holds a quarter of token t's integer dot.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> PackedBlockDot(Vector512<short> p0, Vector512<short> p1, Vector512<short> p2, Vector512<short> p3, Vector512<short>* a) =>
        Avx512BW.MultiplyAddAdjacent(p0, a[0]) + Avx512BW.MultiplyAddAdjacent(p1, a[1])
        + (Avx512BW.MultiplyAddAdjacent(p2, a[2]) + Avx512BW.MultiplyAddAdjacent(p3, a[3]));

    /// <summary>
    /// 1 or 2 weight rows wStride bytes apart against 1 to 4 packed groups groupStride bytes apart (4 to 16 tokens):
    /// y[(4g + t) * yStride + r]. A (row, token) result does not depend on the rows or groups it ran with (the pool
    /// splits rows anywhere, and a batch of decodes uses fewer groups than a prefill).
    /// </summary>
    public static void DotPacked_512(byte* w, long wStride, int rows, byte* packed, long groupStride, int groups, int n, float* y, long yStride)
    {
        switch (groups, rows)
        {
            case (4, 2): DotPacked2<Count4>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (4, _): DotPacked1<Count4>(w, packed, groupStride, n, y, yStride); break;
            case (3, 2): DotPacked2<Count3>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (3, _): DotPacked1<Count3>(w, packed, groupStride, n, y, yStride); break;
            case (2, 2): DotPacked2<Count2>(w, wStride, packed, groupStride, n, y, yStride); break;
            case (2, _): DotPacked1<Count2>(w, packed, groupStride, n, y, yStride); break;
            case (_, 2): DotPacked2<Count1>(w, wStride, packed, groupStride, n, y, yStride); break;
            default: DotPacked1<Count1>(w, packed, groupStride, n, y, yStride); break;
        }
    }

    /// <summary>
    /// Bytes ahead of each weight row that the packed kernels prefetch: with few tokens per row (batched decode) the
    /// arithmetic per weight byte is small, and the hardware prefetcher alone leaves the loop waiting on memory.
    /// </summary>
    private const int PrefetchAhead = 1024;

    /// <summary>One block of one group: lane 4L + t gets token t's quarter dot, scaled by d_w · d_x and accumulated.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> PackedAccumulate(Vector512<short> p0, Vector512<short> p1, Vector512<short> p2, Vector512<short> p3,
        Vector512<short>* a, float* d, Vector512<float> dw, Vector512<float> acc) =>
        Vector512.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(PackedBlockDot(p0, p1, p2, p3, a)),
            Avx512F.BroadcastVector128ToVector512(d) * dw, acc);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotPacked2<TG>(byte* w, long wStride, byte* packed, long groupStride, int n, float* y, long yStride)
        where TG : struct, IPackedCount
    {
        int nb = n / QK;
        long sb = PackedScalesBytes(n);
        float* d0 = (float*)packed, d1 = (float*)(packed + groupStride), d2 = (float*)(packed + 2 * groupStride), d3 = (float*)(packed + 3 * groupStride);
        var a0 = (Vector512<short>*)(packed + sb);
        long gs = groupStride / sizeof(Vector512<short>);
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default;
        byte* w1 = w + wStride;
        for (int b = 0; b < nb; b++, w += BlockBytes, w1 += BlockBytes, a0 += 4)
        {
            Sse.Prefetch0(w + PrefetchAhead);
            Sse.Prefetch0(w1 + PrefetchAhead);
            Vector512<int> u = WeightQuants512(w).AsInt32();
            Vector512<short> p0 = Avx512F.Shuffle(u, 0x00).AsInt16(), p1 = Avx512F.Shuffle(u, 0x55).AsInt16();
            Vector512<short> p2 = Avx512F.Shuffle(u, 0xAA).AsInt16(), p3 = Avx512F.Shuffle(u, 0xFF).AsInt16();
            u = WeightQuants512(w1).AsInt32();
            Vector512<short> r0 = Avx512F.Shuffle(u, 0x00).AsInt16(), r1 = Avx512F.Shuffle(u, 0x55).AsInt16();
            Vector512<short> r2 = Avx512F.Shuffle(u, 0xAA).AsInt16(), r3 = Avx512F.Shuffle(u, 0xFF).AsInt16();
            var dw0 = Vector512.Create(WeightScale(w));
            var dw1 = Vector512.Create(WeightScale(w1));
            c00 = PackedAccumulate(p0, p1, p2, p3, a0, d0 + 4 * b, dw0, c00);
            c10 = PackedAccumulate(r0, r1, r2, r3, a0, d0 + 4 * b, dw1, c10);
            if (TG.Count > 1)
            {
                c01 = PackedAccumulate(p0, p1, p2, p3, a0 + gs, d1 + 4 * b, dw0, c01);
                c11 = PackedAccumulate(r0, r1, r2, r3, a0 + gs, d1 + 4 * b, dw1, c11);
            }
            if (TG.Count > 2)
            {
                c02 = PackedAccumulate(p0, p1, p2, p3, a0 + 2 * gs, d2 + 4 * b, dw0, c02);
                c12 = PackedAccumulate(r0, r1, r2, r3, a0 + 2 * gs, d2 + 4 * b, dw1, c12);
            }
            if (TG.Count > 3)
            {
                c03 = PackedAccumulate(p0, p1, p2, p3, a0 + 3 * gs, d3 + 4 * b, dw0, c03);
                c13 = PackedAccumulate(r0, r1, r2, r3, a0 + 3 * gs, d3 + 4 * b, dw1, c13);
            }
        }
        StorePair(y, yStride, c00, c10);
        if (TG.Count > 1) StorePair(y + 4 * yStride, yStride, c01, c11);
        if (TG.Count > 2) StorePair(y + 8 * yStride, yStride, c02, c12);
        if (TG.Count > 3) StorePair(y + 12 * yStride, yStride, c03, c13);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotPacked1<TG>(byte* w, byte* packed, long groupStride, int n, float* y, long yStride)
        where TG : struct, IPackedCount
    {
        int nb = n / QK;
        long sb = PackedScalesBytes(n);
        float* d0 = (float*)packed, d1 = (float*)(packed + groupStride), d2 = (float*)(packed + 2 * groupStride), d3 = (float*)(packed + 3 * groupStride);
        var a0 = (Vector512<short>*)(packed + sb);
        long gs = groupStride / sizeof(Vector512<short>);
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default;
        for (int b = 0; b < nb; b++, w += BlockBytes, a0 += 4)
        {
            Vector512<int> u = WeightQuants512(w).AsInt32();
            Vector512<short> p0 = Avx512F.Shuffle(u, 0x00).AsInt16(), p1 = Avx512F.Shuffle(u, 0x55).AsInt16();
            Vector512<short> p2 = Avx512F.Shuffle(u, 0xAA).AsInt16(), p3 = Avx512F.Shuffle(u, 0xFF).AsInt16();
            var dw0 = Vector512.Create(WeightScale(w));
            c00 = PackedAccumulate(p0, p1, p2, p3, a0, d0 + 4 * b, dw0, c00);
            if (TG.Count > 1) c01 = PackedAccumulate(p0, p1, p2, p3, a0 + gs, d1 + 4 * b, dw0, c01);
            if (TG.Count > 2) c02 = PackedAccumulate(p0, p1, p2, p3, a0 + 2 * gs, d2 + 4 * b, dw0, c02);
            if (TG.Count > 3) c03 = PackedAccumulate(p0, p1, p2, p3, a0 + 3 * gs, d3 + 4 * b, dw0, c03);
        }
        PackedLayout.Store(y, yStride, c00);
        if (TG.Count > 1) PackedLayout.Store(y + 4 * yStride, yStride, c01);
        if (TG.Count > 2) PackedLayout.Store(y + 8 * yStride, yStride, c02);
        if (TG.Count > 3) PackedLayout.Store(y + 12 * yStride, yStride, c03);
    }

    /// <summary>Two rows' packed accumulators of one group: row 0 at y[t * yStride], row 1 beside it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StorePair(float* y, long yStride, Vector512<float> row0, Vector512<float> row1)
    {
        PackedLayout.Store(y, yStride, row0);
        PackedLayout.Store(y + 1, yStride, row1);
    }

    /// <summary>The F16 scales of 16 consecutive weight blocks as floats (two gathers of the 34-byte-strided d fields).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> WeightScales16(byte* w)
    {
        var idx = Vector256.Create(0, 34, 68, 102, 136, 170, 204, 238);
        Vector256<int> lo = Avx2.GatherVector256((int*)w, idx, 1);
        Vector256<int> hi = Avx2.GatherVector256((int*)(w + 8 * BlockBytes), idx, 1);
        return BlockScale.F16ToF32(Vector512.Create(lo, hi));
    }

    /// <summary>The F16 scales of 8 consecutive weight blocks as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WeightScales8(byte* w) =>
        HalfConvert.F16ToF32(Avx2.GatherVector256((int*)w, Vector256.Create(0, 34, 68, 102, 136, 170, 204, 238), 1));

    /// <summary>The kernels at one level; at 512 bits an in-memory model's weights are interleaved (Q8_0Interleaved).</summary>
    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 => Q8_0Interleaved.Use(CreateNative(level)),
        SimdLevel.V128 or SimdLevel.V128Dot => Vector128Dots.WithQ8_0Dots(CreateNative(SimdLevel.Scalar), level),
        _ => CreateNative(level),
    };

    private static TypeKernels CreateNative(SimdLevel level) => new()
    {
        Type = GgmlType.Q8_0,
        VecDotType = GgmlType.Q8_0,
        ActivationRowBytes = level == SimdLevel.V512 ? &ActivationRowBytes512 : &ActivationRowBytes8,
        ActivationsToFloat = level == SimdLevel.V512 ? &ActivationsToFloat512 : &ActivationsToFloat8,
        QuantizeActivations = level switch
        {
            SimdLevel.V512 => &QuantizeActivations512,
            SimdLevel.V256 => &QuantizeActivations256,
            _ => &QuantizeActivationsScalar,
        },
        Dot = level switch
        {
            SimdLevel.V512 => &Dot512,
            SimdLevel.V256 => &Dot256,
            _ => &DotScalar,
        },
        TileTokens = level == SimdLevel.V512 ? 8 : 4,
        DotTile = level switch
        {
            SimdLevel.V512 => &Dot8_512,
            SimdLevel.V256 => &Dot4_256,
            _ => &Dot4Scalar,
        },
        DequantizeRow = level switch
        {
            SimdLevel.V512 => &DequantizeRowQ8_0_512,
            SimdLevel.V256 => &DequantizeRowQ8_0_256,
            _ => &DequantizeRowQ8_0,
        },
        QuantizeRow = &QuantizeRowQ8_0Reference,
        PackedGroupBytes = level == SimdLevel.V512 ? &PackedGroupBytes512 : null,
        PackActivations = level == SimdLevel.V512 ? &PackActivations512 : null,
        DotPacked = level == SimdLevel.V512 ? &DotPacked_512 : null,
    };
}
