// SIMD dots of the 256-value IQ and ternary types with Q8_K activations (Q8_KAligned's layout). Every such type is
// read the same way: each group of 32 values unpacks (IGroupBlock.Group) into 32 magnitudes, 32 sign sources and the
// integer scale of each 16-value half, and meets 32 activations in vpsignb (the activation takes the weight's sign),
// vpmaddubsw (magnitude · activation, pairs summed in int16: at most 2·127·127) and vpmaddwd by the scales. A block's
// 8 groups add up in int32 lanes; one FMA per block applies d·dy. Types whose values carry a fractional shift (IQ1's
// ±1/8) unpack 8·value ± 1 and fold the 1/8 into d, so all the arithmetic before the FMA is exact.
//  - Dot (decode): one row; Dot2 two rows sharing the activation loads.
//  - DotTile: one row against 4 (256-bit) or 8 (512-bit machines: 32 vector registers) tokens, each group unpacked
//    once for all of them.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

/// <summary>A 256-value block type read as 8 groups of 32 values.</summary>
internal unsafe interface IGroupBlock
{
    static abstract int BlockBytes { get; }

    /// <summary>The block's weight scale before the group scales: its F16 d times the format's constant.</summary>
    static abstract float Scale(byte* w);

    /// <summary>
    /// Group g (values 32g … 32g + 31) of the block at w: |value| (at most 127), a sign source whose sign is the
    /// value's (zero where the value is zero), and the integer scale of each of the 16 int16 pair sums.
    /// </summary>
    static abstract void Group(byte* w, int g, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale);
}

internal static unsafe class IqKernels
{
    private const int ActBlockBytes = Q8_KAligned.BlockBytes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> GroupDot(Vector256<byte> magnitude, Vector256<sbyte> sign, Vector256<short> scale, sbyte* y) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(magnitude, Avx2.Sign(Vector256.Load(y), sign)), scale);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ActScale(byte* act) => *(float*)(act + Q8_KAligned.D);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<T>(byte* w, byte* act, int n) where T : struct, IGroupBlock
    {
        Vector256<float> acc = default;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes, act += ActBlockBytes)
        {
            Vector256<int> sumi = default;
            for (int g = 0; g < 8; g++)
            {
                T.Group(w, g, out var m, out var s, out var sc);
                sumi += GroupDot(m, s, sc, (sbyte*)act + 32 * g);
            }
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * ActScale(act)), Avx.ConvertToVector256Single(sumi), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>Two rows wStride bytes apart against one activation row (each loaded once for both): y[0], y[yStride], each bit for bit <see cref="Dot{T}"/>'s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot2<T>(byte* w, long wStride, byte* act, int n, float* y, long yStride) where T : struct, IGroupBlock
    {
        Vector256<float> acc0 = default, acc1 = default;
        byte* w1 = w + wStride;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes, w1 += T.BlockBytes, act += ActBlockBytes)
        {
            Vector256<int> sumi0 = default, sumi1 = default;
            for (int g = 0; g < 8; g++)
            {
                Vector256<sbyte> a = Vector256.Load((sbyte*)act + 32 * g);
                T.Group(w, g, out var m0, out var s0, out var sc0);
                T.Group(w1, g, out var m1, out var s1, out var sc1);
                sumi0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m0, Avx2.Sign(a, s0)), sc0);
                sumi1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m1, Avx2.Sign(a, s1)), sc1);
            }
            float dy = ActScale(act);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * dy), Avx.ConvertToVector256Single(sumi0), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w1) * dy), Avx.ConvertToVector256Single(sumi1), acc1);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, IGroupBlock =>
        DotTile<T, Count4>(w, act, actStride, n, y, yStride);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, IGroupBlock =>
        DotTile<T, Count8>(w, act, actStride, n, y, yStride);

    /// <summary>One row against TN.Count tokens actStride bytes apart; each group unpacked once for all of them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DotTile<T, TN>(byte* w, byte* act, long actStride, int n, float* y, long yStride)
        where T : struct, IGroupBlock where TN : struct, IPackedCount
    {
        const int Max = 8;
        int tokens = TN.Count;
        Vector256<float>* acc = stackalloc Vector256<float>[Max];
        Vector256<int>* sumi = stackalloc Vector256<int>[Max];
        for (int t = 0; t < tokens; t++) acc[t] = default;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes)
        {
            long o = (long)i * ActBlockBytes;
            for (int t = 0; t < tokens; t++) sumi[t] = default;
            for (int g = 0; g < 8; g++)
            {
                T.Group(w, g, out var m, out var s, out var sc);
                for (int t = 0; t < tokens; t++) sumi[t] += GroupDot(m, s, sc, (sbyte*)(act + t * actStride + o) + 32 * g);
            }
            float d = T.Scale(w);
            for (int t = 0; t < tokens; t++)
                acc[t] = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(act + t * actStride + o)), Avx.ConvertToVector256Single(sumi[t]), acc[t]);
        }
        for (int t = 0; t < tokens; t++) y[t * yStride] = Vector256.Sum(acc[t]);
    }

    /// <summary>
    /// The kernels of block type TBlock (its scalar references in the table) with the SIMD dots of TGroup at a 256- or
    /// 512-bit level; the scalar level keeps the references.
    /// </summary>
    public static TypeKernels Create<TBlock, TGroup>(SimdLevel level) where TBlock : IQuantBlock where TGroup : struct, IGroupBlock
    {
        var k = QuantBlockKernels.Create<TBlock>();
        return level switch
        {
            SimdLevel.V512 => Q8_KAligned.Use(k) with { Dot = &Dot<TGroup>, Dot2 = &Dot2<TGroup>, DotTile = &Dot8<TGroup>, TileTokens = 8 },
            SimdLevel.V256 => Q8_KAligned.Use(k) with { Dot = &Dot<TGroup>, Dot2 = &Dot2<TGroup>, DotTile = &Dot4<TGroup>, TileTokens = 4 },
            _ => k,
        };
    }
}
