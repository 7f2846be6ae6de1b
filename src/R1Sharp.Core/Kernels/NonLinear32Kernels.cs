// SIMD dots of the 32-value non-linear 4-bit types with Q8_0 activations: IQ4_NL (an F16 scale and kvalues_iq4nl) and
// MXFP4 (an E8M0 exponent and the doubled E2M1 values). A block's 16 bytes of nibbles become its 32 values in order
// (low nibbles, then high) with one vpshufb through the codebook, its magnitudes with another; the activations take the
// weights' signs (vpsignb), vpmaddubsw by the magnitudes and vpmaddwd by ones sum the products in int32 lanes, and one
// FMA per block applies d_w·d_y. The single-token dot reads LegacyBlockDot's activation rows, whose per-block d_y are
// floats already, and converts 8 blocks' weight scales as one vector (a scalar F16 conversion per block cost more than
// the block's dot).
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

    /// <summary>The scales of the 8 consecutive blocks at w.</summary>
    static abstract Vector256<float> Scales8(byte* w);

    /// <summary>The codebook in both 128-bit lanes.</summary>
    static abstract Vector256<sbyte> Values { get; }
}

internal unsafe partial struct Iq4NlBlock32 : INonLinearBlock
{
    private static readonly Vector256<sbyte> s_values = Vector256.Create(Vector128.Create((sbyte)-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113));
    public static int BlockBytes => 18;
    public static int QsOffset => 2;
    public static float Scale(byte* w) => BlockScale.F16ToF32(*(ushort*)w);
    public static Vector256<sbyte> Values => s_values;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Scales8(byte* w) =>
        HalfConvert.F16ToF32(Avx2.GatherVector256((int*)w, Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * 18, 1));
}

internal unsafe partial struct Mxfp4Block32 : INonLinearBlock
{
    private static readonly Vector256<sbyte> s_values = Vector256.Create(Vector128.Create((sbyte)0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12));
    public static int BlockBytes => 17;
    public static int QsOffset => 1;
    public static float Scale(byte* w) => QuantReference.E8M0ToFloatHalf(*w);
    public static Vector256<sbyte> Values => s_values;

    /// <summary>2^(e − 128) per lane: e − 1 as the exponent field, or 2^21 ≪ e as a subnormal for e &lt; 2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Scales8(byte* w)
    {
        Vector256<int> e = Avx2.GatherVector256((int*)w, Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * 17, 1) & Vector256.Create(0xFF);
        Vector256<int> normal = Vector256.ShiftLeft(e - Vector256<int>.One, 23);
        Vector256<int> sub = Avx2.ShiftLeftLogicalVariable(Vector256.Create(0x00200000), e.AsUInt32());
        return Vector256.ConditionalSelect(Vector256.LessThan(e, Vector256.Create(2)), sub, normal).AsSingle();
    }
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

    /// <summary>Lane i of s in every lane (vpermps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Lane(Vector256<float> s, int i) => Avx2.PermuteVar8x32(s, Vector256.Create(i));

    /// <summary>One row against one activation row in LegacyBlockDot's layout (ggml's blocks, then each block's d_y as a float).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256<T>(byte* w, byte* act, int n) where T : struct, INonLinearBlock
    {
        Vector256<sbyte> lut = T.Values;
        var ones = Vector256.Create((short)1);
        int nb = n / 32, b = 0, bb = T.BlockBytes;
        float* dy = LegacyBlockDot.BlockScales(act, nb);
        sbyte* y = (sbyte*)act + 2;
        Vector256<float> acc0 = default, acc1 = default;
        // the next 8 blocks' scales are gathered an iteration ahead: from L3 the gather's latency held up the whole loop
        Vector256<float> next = nb >= 8 ? T.Scales8(w) : default;
        for (; b + 8 <= nb; b += 8, w += 8 * bb, y += 8 * ActBlockBytes)
        {
            Vector256<float> s = next * Vector256.Load(dy + b);
            if (b + 16 <= nb) next = T.Scales8(w + 8 * bb);
            acc0 = Vector256.FusedMultiplyAdd(Lane(s, 0), Avx.ConvertToVector256Single(BlockDot(Values<T>(w, lut), y, ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Lane(s, 1), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + bb, lut), y + ActBlockBytes, ones)), acc1);
            acc0 = Vector256.FusedMultiplyAdd(Lane(s, 2), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + 2 * bb, lut), y + 2 * ActBlockBytes, ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Lane(s, 3), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + 3 * bb, lut), y + 3 * ActBlockBytes, ones)), acc1);
            acc0 = Vector256.FusedMultiplyAdd(Lane(s, 4), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + 4 * bb, lut), y + 4 * ActBlockBytes, ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Lane(s, 5), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + 5 * bb, lut), y + 5 * ActBlockBytes, ones)), acc1);
            acc0 = Vector256.FusedMultiplyAdd(Lane(s, 6), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + 6 * bb, lut), y + 6 * ActBlockBytes, ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Lane(s, 7), Avx.ConvertToVector256Single(BlockDot(Values<T>(w + 7 * bb, lut), y + 7 * ActBlockBytes, ones)), acc1);
        }
        for (; b < nb; b++, w += bb, y += ActBlockBytes)
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * dy[b]), Avx.ConvertToVector256Single(BlockDot(Values<T>(w, lut), y, ones)), acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    /// <summary>One row against 4 activation rows (LegacyBlockDot's layout); each block's values looked up once for the 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, INonLinearBlock
    {
        Vector256<sbyte> lut = T.Values;
        var ones = Vector256.Create((short)1);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        int nb = n / 32;
        float* d0 = LegacyBlockDot.BlockScales(a0, nb), d1 = LegacyBlockDot.BlockScales(a1, nb);
        float* d2 = LegacyBlockDot.BlockScales(a2, nb), d3 = LegacyBlockDot.BlockScales(a3, nb);
        for (int b = 0; b < nb; b++, w += T.BlockBytes)
        {
            long o = (long)b * ActBlockBytes;
            Vector256<sbyte> v = Values<T>(w, lut);
            Vector256<byte> m = Avx2.Abs(v);
            float dw = T.Scale(w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * d0[b]), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a0 + o) + 2), v)), ones)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * d1[b]), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a1 + o) + 2), v)), ones)), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * d2[b]), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a2 + o) + 2), v)), ones)), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * d3[b]), Avx.ConvertToVector256Single(
                Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, Avx2.Sign(Vector256.Load((sbyte*)(a3 + o) + 2), v)), ones)), acc3);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }

    /// <summary>
    /// The single-token dot is the 256-bit one at both levels (there is no 512-bit vpsignb); the 128-bit levels read
    /// ggml's block_q8_0 rows (Vector128BlockDots).
    /// </summary>
    public static TypeKernels Create<TBlock, T>(SimdLevel level) where TBlock : IQuantBlock where T : struct, INonLinearBlock, IBlock32
    {
        IqKernels.InitializeTables(typeof(T));
        return level switch
        {
            SimdLevel.V512 or SimdLevel.V256 => QuantBlockKernels.Create<TBlock>() with
            {
                ActivationRowBytes = &LegacyBlockDot.ActivationRowBytesWithSums, QuantizeActivations = &LegacyBlockDot.QuantizeWithSums,
                Dot = &Dot256<T>, DotTile = &Dot4_256<T>, TileTokens = 4,
            },
            _ => Vector128BlockDots.Legacy<T>(QuantBlockKernels.Create<TBlock>(), level),
        };
    }
}
