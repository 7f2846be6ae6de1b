// Q2_K weights with Q8_K activations (ggml block_q2_K, 84 bytes per 256 values): 16 bytes of 4-bit scale (low) and
// min (high) per 16 values, 64 bytes of 2-bit quants, f16 d and dmin. Value 128h + 32j + l is bits 2j..2j+1 of
// qs[32h + l] with scale 8h + 2j + (l >= 16). The unsigned quants (0..3) meet the activations in vpmaddubsw, the
// 16-bit pair sums take their sub-block's scale in vpmaddwd; the mins meet Q8_K's per-16 sums. The float steps are
// ggml's AVX2 kernel's (one accumulator, the min term then the scaled sum per block, hsum_float_8), so a dot here is
// llama.cpp's to the bit and a model's logits do not drift from its by a rounding step of the activations. The
// 256-bit kernels serve the 512-bit level too (ggml has no 512-bit Q2_K kernel either).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q2KKernels
{
    private const int BlockBytes = 84, ActBlockBytes = 292;

    /// <summary>Σ over the 16 sub-blocks of min · (sum of the activations there), as 8 int32 lanes of float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MinTerm(byte* w, byte* act)
    {
        Vector256<short> mins = Avx2.ConvertToVector256Int16(Vector128.ShiftRightLogical(Vector128.Load(w).AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F));
        return Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(act + 260)), mins));
    }

    /// <summary>The scales of sub-blocks 8h+2j (low 128 bits) and 8h+2j+1 (high), as 16-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales(byte* w, int s) =>
        Vector256.Create(Vector128.Create((short)(w[s] & 0xF)), Vector128.Create((short)(w[s + 1] & 0xF)));

    /// <summary>The 32 values 128h + 32j .. +31 (0..3) of half <paramref name="q"/> (qs[32h..32h+31]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Values(Vector256<byte> q, int j) =>
        Vector256.ShiftRightLogical(q.AsUInt16(), 2 * j).AsByte() & Vector256.Create((byte)0x03);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot32(Vector256<byte> q, sbyte* y, Vector256<short> scale) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q, Vector256.Load(y)), scale);

    /// <summary>ggml's hsum_float_8: (hi + lo), then lanes 0+2 and 1+3, then their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float HSum(Vector256<float> x)
    {
        Vector128<float> r = x.GetUpper() + x.GetLower();
        r += Sse.MoveHighToLow(r, r);
        return Sse.AddScalar(r, Sse3.MoveHighAndDuplicate(r)).ToScalar();
    }

    /// <summary>One block's contribution, added to <paramref name="acc"/> as ggml adds it: the min term, then the scaled sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block(Vector256<float> acc, float d, float dmin, Vector256<float> mins, Vector256<int> sumi)
    {
        acc = Vector256.FusedMultiplyAdd(Vector256.Create(dmin), mins, acc);
        return Vector256.FusedMultiplyAdd(Vector256.Create(d), Avx.ConvertToVector256Single(sumi), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        Vector256<float> acc = default;
        for (int i = 0; i < n / 256; i++, w += BlockBytes, act += ActBlockBytes)
        {
            float yd = *(float*)act;
            Vector256<int> sumi = default;
            sbyte* y = (sbyte*)act + 4;
            for (int h = 0; h < 2; h++)
            {
                Vector256<byte> q = Vector256.Load(w + 16 + 32 * h);
                for (int j = 0; j < 4; j++) sumi += Dot32(Values(q, j), y + 128 * h + 32 * j, Scales(w, 8 * h + 2 * j));
            }
            acc = Block(acc, yd * HalfConvert.F16ToF32(*(ushort*)(w + 80)), -yd * HalfConvert.F16ToF32(*(ushort*)(w + 82)), MinTerm(w, act), sumi);
        }
        return HSum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        const int T = 4;
        Vector256<float>* acc = stackalloc Vector256<float>[T];
        for (int t = 0; t < T; t++) acc[t] = default;
        Vector256<byte>* q = stackalloc Vector256<byte>[8];
        Vector256<short>* s = stackalloc Vector256<short>[8];
        for (int i = 0; i < n / 256; i++, w += BlockBytes)
        {
            float d = HalfConvert.F16ToF32(*(ushort*)(w + 80)), dmin = HalfConvert.F16ToF32(*(ushort*)(w + 82));
            for (int h = 0; h < 2; h++)
            {
                Vector256<byte> half = Vector256.Load(w + 16 + 32 * h);
                for (int j = 0; j < 4; j++)
                {
                    q[4 * h + j] = Values(half, j);
                    s[4 * h + j] = Scales(w, 8 * h + 2 * j);
                }
            }
            for (int t = 0; t < T; t++)
            {
                byte* a = act + t * actStride + (long)i * ActBlockBytes;
                sbyte* yq = (sbyte*)a + 4;
                float yd = *(float*)a;
                Vector256<int> sumi = default;
                for (int k = 0; k < 8; k++) sumi += Dot32(q[k], yq + 32 * k, s[k]);
                acc[t] = Block(acc[t], yd * d, -yd * dmin, MinTerm(w, a), sumi);
            }
        }
        for (int t = 0; t < T; t++) y[t * yStride] = HSum(acc[t]);
    }

    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 or SimdLevel.V256 => QuantBlockKernels.Create<Q2_KBlock>() with { Dot = &Dot256, DotTile = &Dot4_256, TileTokens = 4 },
        _ => Vector128BlockDots.KQuant(QuantBlockKernels.Create<Q2_KBlock>(), level),
    };
}
