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
    static abstract void Group(byte* w, int g, Vector256<short> scales, out Vector256<byte> magnitude, out Vector256<sbyte> sign, out Vector256<short> scale);

    /// <summary>
    /// What Group reads its scale from, once per block (all the block's group scales unpacked at once; see
    /// GroupScales.Lane), or zero for types whose groups read their own.
    /// </summary>
    static abstract Vector256<short> Scales(byte* w);

    /// <summary>How the groups meet the activations.</summary>
    static abstract GroupMode Mode { get; }

    /// <summary>
    /// For the Offset and Ternary modes, the weights of the block's 16 activation sums (Σ y over values 16h … 16h + 15)
    /// that take the offset of Group's values back off (scales: what <see cref="Scales"/> gave).
    /// </summary>
    static abstract Vector256<short> Offsets(byte* w, Vector256<short> scales);
}

internal enum GroupMode
{
    /// <summary>Group gives magnitudes and a sign source: the activation takes the weight's sign (vpsignb).</summary>
    Signed,

    /// <summary>
    /// Group gives the values plus a constant that makes them non-negative (IQ1's 8·grid ± 1 plus 9), used as they are;
    /// vpmaddwd of the activation block sums by <see cref="IGroupBlock.Offsets"/> takes the constant's share off.
    /// </summary>
    Offset,

    /// <summary>
    /// As Offset with scale 1 throughout (the ternary types, levels stored as 0, 1, 2): the 8 groups' int16 pair sums
    /// add up before they widen (8 · 2 · 2 · 127 fits).
    /// </summary>
    Ternary,
}

internal static unsafe class IqKernels
{
    private const int ActBlockBytes = Q8_KAligned.BlockBytes;

    /// <summary>Group g of weight block w against the 32 activations at y: 8 int32 lanes of scale · Σ w·y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> GroupDot<T>(byte* w, int g, Vector256<short> scales, sbyte* y) where T : struct, IGroupBlock
    {
        T.Group(w, g, scales, out var m, out var s, out var sc);
        Vector256<sbyte> a = Vector256.Load(y + 32 * g);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, T.Mode == GroupMode.Signed ? Avx2.Sign(a, s) : a), sc);
    }

    /// <summary>Σ over one block (the 8 groups unrolled, so each group's offsets are constants) as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockDot<T>(byte* w, byte* act) where T : struct, IGroupBlock
    {
        var y = (sbyte*)act;
        Vector256<short> sc = T.Scales(w);
        if (T.Mode == GroupMode.Ternary)
        {
            Vector256<short> s = LevelDot<T>(w, 0, y) + LevelDot<T>(w, 1, y) + LevelDot<T>(w, 2, y) + LevelDot<T>(w, 3, y)
                + LevelDot<T>(w, 4, y) + LevelDot<T>(w, 5, y) + LevelDot<T>(w, 6, y) + LevelDot<T>(w, 7, y);
            return Avx2.MultiplyAddAdjacent(s, Vector256.Create((short)1)) + Offset<T>(w, sc, act);
        }
        Vector256<int> sum = GroupDot<T>(w, 0, sc, y) + GroupDot<T>(w, 1, sc, y) + GroupDot<T>(w, 2, sc, y) + GroupDot<T>(w, 3, sc, y)
            + GroupDot<T>(w, 4, sc, y) + GroupDot<T>(w, 5, sc, y) + GroupDot<T>(w, 6, sc, y) + GroupDot<T>(w, 7, sc, y);
        return T.Mode == GroupMode.Offset ? sum + Offset<T>(w, sc, act) : sum;
    }

    /// <summary>Group g's stored levels against the 32 activations at y: 16 int16 pair sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> LevelDot<T>(byte* w, int g, sbyte* y) where T : struct, IGroupBlock
    {
        T.Group(w, g, default, out var m, out _, out _);
        return Avx2.MultiplyAddAdjacent(m, Vector256.Load(y + 32 * g));
    }

    /// <summary>The offset's correction of a block (Offset and Ternary modes): the 16 activation sums by their weights.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Offset<T>(byte* w, Vector256<short> scales, byte* act) where T : struct, IGroupBlock =>
        Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(act + Q8_KAligned.BSums)), T.Offsets(w, scales));

    /// <summary>A token's 16 activation sums (block start a) by the weights o.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sums(byte* a, Vector256<short> o) =>
        Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(a + Q8_KAligned.BSums)), o);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ActScale(byte* act) => *(float*)(act + Q8_KAligned.D);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<T>(byte* w, byte* act, int n) where T : struct, IGroupBlock
    {
        Vector256<float> acc = default;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes, act += ActBlockBytes)
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * ActScale(act)), Avx.ConvertToVector256Single(BlockDot<T>(w, act)), acc);
        return Vector256.Sum(acc);
    }

    /// <summary>Two rows wStride bytes apart against one activation row: y[0], y[yStride], each bit for bit <see cref="Dot{T}"/>'s.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot2<T>(byte* w, long wStride, byte* act, int n, float* y, long yStride) where T : struct, IGroupBlock
    {
        Vector256<float> acc0 = default, acc1 = default;
        byte* w1 = w + wStride;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes, w1 += T.BlockBytes, act += ActBlockBytes)
        {
            float dy = ActScale(act);
            // the second row's activation loads are the first's (no store between them)
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w) * dy), Avx.ConvertToVector256Single(BlockDot<T>(w, act)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(T.Scale(w1) * dy), Avx.ConvertToVector256Single(BlockDot<T>(w1, act)), acc1);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
    }

    /// <summary>Group g of a weight block against one token's activations at a (block start): scale · Σ w·y in 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> TokenDot<T>(Vector256<byte> m, Vector256<sbyte> s, Vector256<short> sc, byte* a, int g) where T : struct, IGroupBlock
    {
        Vector256<sbyte> y = Vector256.Load((sbyte*)a + 32 * g);
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(m, T.Mode == GroupMode.Signed ? Avx2.Sign(y, s) : y), sc);
    }

    /// <summary>
    /// One row against 4 tokens actStride bytes apart: each group unpacked once (a loop over the groups: the unpacking's
    /// index arithmetic is shared by the tokens) and met by each token, the sums in registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, IGroupBlock
    {
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes)
        {
            byte* a0 = act + (long)i * ActBlockBytes, a1 = a0 + actStride, a2 = a1 + actStride, a3 = a2 + actStride;
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default;
            Vector256<short> scales = T.Scales(w);
            for (int g = 0; g < 8; g++)
            {
                T.Group(w, g, scales, out var m, out var s, out var sc);
                s0 += TokenDot<T>(m, s, sc, a0, g);
                s1 += TokenDot<T>(m, s, sc, a1, g);
                s2 += TokenDot<T>(m, s, sc, a2, g);
                s3 += TokenDot<T>(m, s, sc, a3, g);
            }
            if (T.Mode != GroupMode.Signed)
            {
                Vector256<short> o = T.Offsets(w, scales);
                s0 += Sums(a0, o); s1 += Sums(a1, o); s2 += Sums(a2, o); s3 += Sums(a3, o);
            }
            float d = T.Scale(w);
            f0 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a0)), Avx.ConvertToVector256Single(s0), f0);
            f1 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a1)), Avx.ConvertToVector256Single(s1), f1);
            f2 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a2)), Avx.ConvertToVector256Single(s2), f2);
            f3 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a3)), Avx.ConvertToVector256Single(s3), f3);
        }
        y[0] = Vector256.Sum(f0);
        y[yStride] = Vector256.Sum(f1);
        y[2 * yStride] = Vector256.Sum(f2);
        y[3 * yStride] = Vector256.Sum(f3);
    }

    /// <summary>As <see cref="Dot4{T}"/> with 8 tokens (AVX-512 machines: 32 vector registers hold the sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot8<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : struct, IGroupBlock
    {
        Vector256<float> f0 = default, f1 = default, f2 = default, f3 = default, f4 = default, f5 = default, f6 = default, f7 = default;
        for (int i = 0; i < n / 256; i++, w += T.BlockBytes)
        {
            byte* a0 = act + (long)i * ActBlockBytes, a1 = a0 + actStride, a2 = a1 + actStride, a3 = a2 + actStride;
            byte* a4 = a3 + actStride, a5 = a4 + actStride, a6 = a5 + actStride, a7 = a6 + actStride;
            Vector256<int> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            Vector256<short> scales = T.Scales(w);
            for (int g = 0; g < 8; g++)
            {
                T.Group(w, g, scales, out var m, out var s, out var sc);
                s0 += TokenDot<T>(m, s, sc, a0, g);
                s1 += TokenDot<T>(m, s, sc, a1, g);
                s2 += TokenDot<T>(m, s, sc, a2, g);
                s3 += TokenDot<T>(m, s, sc, a3, g);
                s4 += TokenDot<T>(m, s, sc, a4, g);
                s5 += TokenDot<T>(m, s, sc, a5, g);
                s6 += TokenDot<T>(m, s, sc, a6, g);
                s7 += TokenDot<T>(m, s, sc, a7, g);
            }
            if (T.Mode != GroupMode.Signed)
            {
                Vector256<short> o = T.Offsets(w, scales);
                s0 += Sums(a0, o); s1 += Sums(a1, o); s2 += Sums(a2, o); s3 += Sums(a3, o);
                s4 += Sums(a4, o); s5 += Sums(a5, o); s6 += Sums(a6, o); s7 += Sums(a7, o);
            }
            float d = T.Scale(w);
            f0 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a0)), Avx.ConvertToVector256Single(s0), f0);
            f1 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a1)), Avx.ConvertToVector256Single(s1), f1);
            f2 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a2)), Avx.ConvertToVector256Single(s2), f2);
            f3 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a3)), Avx.ConvertToVector256Single(s3), f3);
            f4 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a4)), Avx.ConvertToVector256Single(s4), f4);
            f5 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a5)), Avx.ConvertToVector256Single(s5), f5);
            f6 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a6)), Avx.ConvertToVector256Single(s6), f6);
            f7 = Vector256.FusedMultiplyAdd(Vector256.Create(d * ActScale(a7)), Avx.ConvertToVector256Single(s7), f7);
        }
        y[0] = Vector256.Sum(f0);
        y[yStride] = Vector256.Sum(f1);
        y[2 * yStride] = Vector256.Sum(f2);
        y[3 * yStride] = Vector256.Sum(f3);
        y[4 * yStride] = Vector256.Sum(f4);
        y[5 * yStride] = Vector256.Sum(f5);
        y[6 * yStride] = Vector256.Sum(f6);
        y[7 * yStride] = Vector256.Sum(f7);
    }

    /// <summary>
    /// Runs the static constructors of the lookup tables and of a group type before any kernel is compiled: the kernels
    /// are compiled fully optimized on their first call, and a static readonly field of a class already initialized is a
    /// constant to the JIT, where otherwise each read is a load behind an initialization check.
    /// </summary>
    public static void InitializeTables(Type group)
    {
        RuntimeHelpers.RunClassConstructor(typeof(IqTables).TypeHandle);
        RuntimeHelpers.RunClassConstructor(group.TypeHandle);
    }

    /// <summary>
    /// The kernels of block type TBlock (its scalar references in the table) with the SIMD dots of TGroup at a 256- or
    /// 512-bit level, its 128-bit ones (Vector128IqDots) at V128 and V128Dot; the scalar level keeps the references.
    /// </summary>
    public static TypeKernels Create<TBlock, TGroup>(SimdLevel level) where TBlock : IQuantBlock where TGroup : struct, IGroupBlock, IGroup128
    {
        InitializeTables(typeof(TGroup));
        var k = QuantBlockKernels.Create<TBlock>();
        return level switch
        {
            SimdLevel.V512 => Q8_KAligned.Use(k) with { Dot = &Dot<TGroup>, Dot2 = &Dot2<TGroup>, DotTile = &Dot8<TGroup>, TileTokens = 8 },
            SimdLevel.V256 => Q8_KAligned.Use(k) with { Dot = &Dot<TGroup>, Dot2 = &Dot2<TGroup>, DotTile = &Dot4<TGroup>, TileTokens = 4 },
            _ => Vector128IqDots.Groups<TGroup>(k, level),
        };
    }
}
