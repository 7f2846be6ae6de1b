// 256-bit dots of the 32-value legacy blocks that take Q8_0 activations (Q4_0, Q5_0): each type only says how to
// unpack a block into its 32 unsigned values and what offset they are stored with; Σ (q − offset)·y is then
// vpmaddubsw(q, y) − vpmaddubsw(offset, y) (the unsigned q on the unsigned side) and one vpmaddwd by ones.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal unsafe interface ILegacyBlock
{
    /// <summary>Bytes of one weight block (f16 d first).</summary>
    static abstract int BlockBytes { get; }

    /// <summary>What the unsigned values are stored above zero (8 for Q4_0, 16 for Q5_0).</summary>
    static abstract byte Offset { get; }

    /// <summary>The 32 unsigned values of the block at <paramref name="block"/>, in value order.</summary>
    static abstract Vector256<byte> Values(byte* block);
}

internal static unsafe class LegacyBlockDot
{
    private const int ActBlockBytes = 34;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> BlockDot<T>(Vector256<byte> q, Vector256<sbyte> y) where T : ILegacyBlock =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(
            Avx2.MultiplyAddAdjacent(q, y) - Avx2.MultiplyAddAdjacent(Vector256.Create(T.Offset), y), Vector256.Create((short)1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scale(byte* w, byte* a) => HalfConvert.F16ToF32(*(ushort*)w) * HalfConvert.F16ToF32(*(ushort*)a);

    /// <summary>
    /// d_w · d_y of 8 consecutive blocks: both scales gathered (4 bytes from each block start, the f16 in the low half)
    /// and converted as one vector; the same products as <see cref="Scale"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scales8<T>(byte* w, byte* act) where T : ILegacyBlock
    {
        Vector256<int> lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        Vector256<int> dw = Avx2.GatherVector256((int*)w, lane * T.BlockBytes, 1);
        Vector256<int> dy = Avx2.GatherVector256((int*)act, lane * ActBlockBytes, 1);
        return HalfConvert.F16ToF32(dw) * HalfConvert.F16ToF32(dy);
    }

    /// <summary>
    /// Groups of 8 blocks take their scales from <see cref="Scales8"/> (two gathers and two vector conversions instead
    /// of 16 scalar ones; the scalar conversions were a third of the instructions), then broadcast one per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256<T>(byte* w, byte* act, int n) where T : ILegacyBlock
    {
        Vector256<float> acc0 = default, acc1 = default;
        int nb = n / 32, b = 0, bb = T.BlockBytes;
        float* s = stackalloc float[8];
        for (; b + 8 <= nb; b += 8)
        {
            Scales8<T>(w, act).Store(s);
            for (int i = 0; i < 8; i += 2, w += 2 * bb, act += 2 * ActBlockBytes)
            {
                acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(s[i]), BlockDot<T>(T.Values(w), Vector256.Load((sbyte*)act + 2)), acc0);
                acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(s[i + 1]),
                    BlockDot<T>(T.Values(w + bb), Vector256.Load((sbyte*)act + ActBlockBytes + 2)), acc1);
            }
        }
        for (; b < nb; b++, w += bb, act += ActBlockBytes)
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), BlockDot<T>(T.Values(w), Vector256.Load((sbyte*)act + 2)), acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    /// <summary>One weight row against 4 activation rows; each block is unpacked once for the 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256<T>(byte* w, byte* act, long actStride, int n, float* y, long yStride) where T : ILegacyBlock
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        for (int b = 0; b < n / 32; b++, w += T.BlockBytes)
        {
            long o = (long)b * ActBlockBytes;
            Vector256<byte> q = T.Values(w);
            float dw = HalfConvert.F16ToF32(*(ushort*)w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a0 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a0 + o) + 2)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a1 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a1 + o) + 2)), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a2 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a2 + o) + 2)), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a3 + o))), BlockDot<T>(q, Vector256.Load((sbyte*)(a3 + o) + 2)), acc3);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }
}
