// Q8_K activations for the SIMD K-quant dots: ggml's block_q8_K values (quantize_row_q8_K_ref, bit for bit) in a
// 64-byte-aligned layout. ggml's 292-byte block puts the 256 quants at offset 4, so every 64-byte load of them splits
// a cache line, which cost a Q6_K dot about a sixth of its time; here each block is 320 bytes:
// qs[256] (int8) at 0, bsums[16] (int16, sums of 16 quants) at 256, d (f32) at 288, 28 bytes of padding.
// The packed prefill kernels read groups of 4 such rows interleaved (Pack).
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q8_KAligned
{
    public const int BlockBytes = 320, BSums = 256, D = 288;
    private const int QK = 256, GgmlBlockBytes = 292;

    public static long RowBytes(int n) => (long)(n / QK) * BlockBytes;

    /// <summary>
    /// ggml's quantize_row_q8_K (the reference one on x86) into this layout, bit for bit: max = the first value of
    /// largest magnitude, iscale = −127/max, q = min(127, round-half-even(iscale·x)) (cvtps2dq rounds as nearest_int
    /// does), bsums the int sums of 16 quants, d = 1/iscale; an all-zero block is all zeros.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Quantize(float* x, byte* y, int n)
    {
        var absMask = Vector256.Create(0x7fffffff).AsSingle();
        var q127 = Vector256.Create(127);
        for (int i = 0; i < n / QK; i++, x += QK, y += BlockBytes)
        {
            Vector256<float> vmax = Vector256<float>.Zero;
            for (int j = 0; j < QK; j += 8) vmax = Vector256.Max(vmax, Vector256.Load(x + j) & absMask);
            float amax = MaxLane(vmax);
            if (amax == 0)
            {
                new Span<byte>(y, BlockBytes).Clear();
                continue;
            }
            float max = 0;
            var vamax = Vector256.Create(amax);
            for (int j = 0; j < QK; j += 8)
            {
                uint hit = Vector256.Equals(Vector256.Load(x + j) & absMask, vamax).ExtractMostSignificantBits();
                if (hit != 0) { max = x[j + BitOperations.TrailingZeroCount(hit)]; break; }
            }
            float iscale = -127f / max;
            var vs = Vector256.Create(iscale);
            for (int j = 0; j < QK; j += 32)
            {
                Vector256<int> a = Vector256.Min(Avx.ConvertToVector256Int32(Vector256.Load(x + j) * vs), q127);
                Vector256<int> b = Vector256.Min(Avx.ConvertToVector256Int32(Vector256.Load(x + j + 8) * vs), q127);
                Vector256<int> c = Vector256.Min(Avx.ConvertToVector256Int32(Vector256.Load(x + j + 16) * vs), q127);
                Vector256<int> d = Vector256.Min(Avx.ConvertToVector256Int32(Vector256.Load(x + j + 24) * vs), q127);
                Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d)).Store((sbyte*)y + j);
                ((short*)(y + BSums))[j / 16] = (short)Vector256.Sum(a + b);
                ((short*)(y + BSums))[j / 16 + 1] = (short)Vector256.Sum(c + d);
            }
            *(float*)(y + D) = 1 / iscale;
            new Span<byte>(y + D + 4, BlockBytes - D - 4).Clear();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MaxLane(Vector256<float> v)
    {
        Vector128<float> m = Vector128.Max(v.GetLower(), v.GetUpper());
        m = Vector128.Max(m, Vector128.Shuffle(m, Vector128.Create(2, 3, 0, 1)));
        return MathF.Max(m.ToScalar(), m.GetElement(1));
    }

    /// <summary>The reference quantizer block by block into this layout (the oracle of <see cref="Quantize"/>).</summary>
    [SkipLocalsInit]
    internal static void QuantizeReference(float* x, byte* y, int n)
    {
        byte* b = stackalloc byte[GgmlBlockBytes];
        for (int i = 0; i < n / QK; i++, x += QK, y += BlockBytes)
        {
            QuantReference.QuantizeRowQ8_KReference(new ReadOnlySpan<float>(x, QK), new Span<byte>(b, GgmlBlockBytes));
            Buffer.MemoryCopy(b + 4, y, QK, QK);
            Buffer.MemoryCopy(b + 260, y + BSums, 32, 32);
            *(float*)(y + D) = *(float*)b;
            new Span<byte>(y + D + 4, BlockBytes - D - 4).Clear();
        }
    }

    public static void ToFloat(byte* act, float* y, int n)
    {
        for (int i = 0; i < n / QK; i++, act += BlockBytes, y += QK)
        {
            float d = *(float*)(act + D);
            for (int j = 0; j < QK; j++) y[j] = d * ((sbyte*)act)[j];
        }
    }

    /// <summary>One row back in ggml's block_q8_K layout (tests hold the SIMD dots to ggml's reference over it).</summary>
    public static void ToGgml(byte* act, byte* dst, int n)
    {
        for (int i = 0; i < n / QK; i++, act += BlockBytes, dst += GgmlBlockBytes)
        {
            *(float*)dst = *(float*)(act + D);
            Buffer.MemoryCopy(act, dst + 4, QK, QK);
            Buffer.MemoryCopy(act + BSums, dst + 260, 32, 32);
        }
    }

    // ---- packed groups: 4 tokens interleaved per 32-bit lane, for the K-quant packed prefill kernels ----
    //
    // Per 256-value block, 1216 bytes (19 vectors of 64):
    //  - 0: quants, 4 chunks of 64 values × 4 vectors: in vector 4c + k, 32-bit lane 4L + t holds token t's 4 quants at
    //    64c + 16L + 4k (a 4×4 transpose of 32-bit lanes inside each 128-bit lane). A weight chunk of 64 values in
    //    natural order, shuffled with vpshufd(k), meets all 4 tokens in one vpmaddubsw; the 4 products summed leave lane
    //    4L + t with token t's dot over values 16L..16L+15 of the chunk.
    //  - 1024, 1088: the 16 block sums, int16 pair 4L + t = token t's sums 2L, 2L+1 (first vector) and 8+2L, 9+2L.
    //  - 1152: d, lane 4L + t = token t's scale.

    public const int PackTokens = 4, PackedBlockBytes = 1216, PackedBSums = 1024, PackedD = 1152;

    public static long PackedGroupBytes(int n) => (long)(n / QK) * PackedBlockBytes;

    /// <summary>Repacks 4 activation rows of this layout, actStride bytes apart, into one group.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pack(byte* act, long actStride, int n, byte* dst)
    {
        byte* a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        for (int i = 0; i < n / QK; i++, dst += PackedBlockBytes)
        {
            long o = (long)i * BlockBytes;
            var v = (Vector512<int>*)dst;
            for (int c = 0; c < 4; c++, v += 4)
            {
                Vector512<int> t0 = Vector512.Load((int*)(act + o + 64 * c)), t1 = Vector512.Load((int*)(a1 + o + 64 * c));
                Vector512<int> t2 = Vector512.Load((int*)(a2 + o + 64 * c)), t3 = Vector512.Load((int*)(a3 + o + 64 * c));
                PackedLayout.Interleave4(t0, t1, t2, t3, v);
            }
            int* bs = (int*)(dst + PackedBSums);
            float* d = (float*)(dst + PackedD);
            for (int t = 0; t < PackTokens; t++)
            {
                byte* a = act + t * actStride + o;
                for (int l = 0; l < 4; l++)
                {
                    bs[4 * l + t] = ((int*)(a + BSums))[l];
                    bs[16 + 4 * l + t] = ((int*)(a + BSums))[4 + l];
                    d[4 * l + t] = *(float*)(a + D);
                }
            }
        }
    }

    /// <summary>The kernels k with their activations in this layout (their dots must read it).</summary>
    public static TypeKernels Use(in TypeKernels k) =>
        k with { ActivationRowBytes = &RowBytes, QuantizeActivations = &Quantize, ActivationsToFloat = &ToFloat };

    /// <summary>The kernels k with packed groups of this layout (their DotPacked must read them).</summary>
    public static TypeKernels UsePacked(in TypeKernels k) => k with { PackedGroupBytes = &PackedGroupBytes, PackActivations = &Pack };

    /// <summary>Whether k keeps its activations in this layout: 3 blocks take 960 bytes here, 896 (876 padded) in ggml's.</summary>
    public static bool IsUsedBy(in TypeKernels k) => k.VecDotType == GgmlType.Q8_K && k.ActivationRowBytes(3 * QK) == RowBytes(3 * QK);
}
