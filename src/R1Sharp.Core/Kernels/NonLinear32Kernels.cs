// SIMD dots of the 32-value non-linear 4-bit types with Q8_0 activations: IQ4_NL (an F16 scale and kvalues_iq4nl) and
// MXFP4 (an E8M0 exponent and the doubled E2M1 values). A block's 16 bytes of nibbles become its 32 values in order
// (low nibbles, then high) with one vpshufb through the codebook, its magnitudes with another; the activations take the
// weights' signs (vpsignb), vpmaddubsw and vpmaddwd by ones sum the products in int32 lanes, and one FMA per block
// applies d_w·d_y. The 512-bit dot takes two blocks per vector.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Kernels.Quants;

namespace R1Sharp.Kernels;

/// <summary>A 32-value block of 16 nibble bytes looked up in a 16-entry codebook.</summary>
internal unsafe interface INonLinearBlock
{
    static abstract int BlockBytes { get; }

    /// <summary>Offset of the 16 nibble bytes in a block.</summary>
    static abstract int QsOffset { get; }

    /// <summary>The block's scale.</summary>
    static abstract float Scale(byte* w);

    /// <summary>The codebook in both 128-bit lanes.</summary>
    static abstract Vector256<sbyte> Values { get; }
}

internal unsafe struct Iq4NlBlock32 : INonLinearBlock
{
    private static readonly Vector256<sbyte> s_values = Vector256.Create(Vector128.Create((sbyte)-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    public static int BlockBytes => 18;
    public static int QsOffset => 2;
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w);
    public static Vector256<sbyte> Values => s_values;
}

internal unsafe struct Mxfp4Block32 : INonLinearBlock
{
    private static readonly Vector256<sbyte> s_values = Vector256.Create(Vector128.Create((sbyte)0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12));
    public static int BlockBytes => 17;
    public static int QsOffset => 1;
    public static float Scale(byte* w) => QuantReference.E8M0ToFloatHalf(*w);
    public static Vector256<sbyte> Values => s_values;
}

internal static unsafe class NonLinear32Kernels
{
    private const int ActBlockBytes = 34;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Values<T>(byte* w, Vector256<sbyte> lut) where T : INonLinearBlock =>
        Avx2.Shuffle(lut, Iq4XsGroups.Nibbles(w + T.QsOffset).AsSByte());

    /// <summary>Σ v·y over one block as 8 int32 lanes, v the signed weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockDot(Vector256<sbyte> v, sbyte* y, Vector256<short> ones) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(v), Avx2.Sign(Vector256.Load(y), v)), ones);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ActScale(byte* a) => BlockScale.F16ToF32(*(ushort*)a);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256<T>(byte* w, byte* act, int n) where T : struct, INonLinearBlock
    {
        Vector256<sbyte> lut = T.Values;
        var ones = Vector256.Create((short)1);
        Vector256<float> acc0 = default, acc1 = default;
        int nb = n / 32, b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * T.BlockBytes, act += 2 * ActBlockBytes)
        {
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * ActScale(act)),
                Avx.ConvertToVector256Single(BlockDot(Values<T>(w, lut), (sbyte*)act + 2, ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w + T.BlockBytes) * ActScale(act + ActBlockBytes)),
                Avx.ConvertToVector256Single(BlockDot(Values<T>(w + T.BlockBytes, lut), (sbyte*)act + ActBlockBytes + 2, ones)), acc1);
        }
        if (b < nb)
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * ActScale(act)),
                Avx.ConvertToVector256Single(BlockDot(Values<T>(w, lut), (sbyte*)act + 2, ones)), acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    /// <summary>Two blocks per 512-bit vector: their 64 values against two activation blocks, d_w·d_y per 256-bit half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot512<T>(byte* w, byte* act, int n) where T : struct, INonLinearBlock
    {
        Vector256<sbyte> lut = T.Values;
        var ones = Vector256.Create((short)1);
        var ones512 = Vector512.Create((short)1);
        Vector512<float> acc = default;
        Vector256<float> tail = default;
        int nb = n / 32, b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * T.BlockBytes, act += 2 * ActBlockBytes)
        {
            Vector512<sbyte> v = Vector512.Create(Values<T>(w, lut), Values<T>(w + T.BlockBytes, lut));
            Vector512<sbyte> y = Vector512.Create(Vector256.Load((sbyte*)act + 2), Vector256.Load((sbyte*)act + ActBlockBytes + 2));
            // vpsignb has no 512-bit form: negate where the weight is negative, zero where it is zero
            Vector512<sbyte> ys = Vector512.ConditionalSelect(Vector512.LessThan(v, Vector512<sbyte>.Zero), -y, y)
                & ~Vector512.Equals(v, Vector512<sbyte>.Zero);
            Vector512<int> s = Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(Vector512.Abs(v).AsByte(), ys), ones512);
            var d = Vector512.Create(Vector256.Create(T.Scale(w) * ActScale(act)), Vector256.Create(T.Scale(w + T.BlockBytes) * ActScale(act + ActBlockBytes)));
            acc = Vector512.FusedMultiplyAdd(d, Avx512F.ConvertToVector512Single(s), acc);
        }
        if (b < nb)
            tail = Vector256.Create(T.Scale(w) * ActScale(act)) * Avx.ConvertToVector256Single(BlockDot(Values<T>(w, lut), (sbyte*)act + 2, ones));
        return Vector512.Sum(acc) + Vector256.Sum(tail);
    }

    /// <summary>One row against 4 activation rows; each block's values looked up once for the 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, INonLinearBlock
    {
        Vector256<sbyte> lut = T.Values;
        var ones = Vector256.Create((short)1);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        for (int b = 0; b < n / 32; b++, w += T.BlockBytes)
        {
            long o = (long)b * ActBlockBytes;
            Vector256<sbyte> v = Values<T>(w, lut);
            Vector256<byte> m = Avx2.Abs(v);
            float dw = T.Scale(w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * ActScale(a0 + o)), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a0 + o) + 2), v)), ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * ActScale(a1 + o)), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a1 + o) + 2), v)), ones)), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * ActScale(a2 + o)), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a2 + o) + 2), v)), ones)), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * ActScale(a3 + o)), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a3 + o) + 2), v)), ones)), acc3);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }

    public static TypeKernels Create<TBlock, T>(SimdLevel level) where TBlock : IQuantBlock where T : struct, INonLinearBlock => level switch
    {
        SimdLevel.V512 => QuantBlockKernels.Create<TBlock>() with { Dot = &Dot512<T>, DotTile = &Dot4_256<T>, TileTokens = 4 },
        SimdLevel.V256 => QuantBlockKernels.Create<TBlock>() with { Dot = &Dot256<T>, DotTile = &Dot4_256<T>, TileTokens = 4 },
        _ => QuantBlockKernels.Create<TBlock>(),
    };
}
