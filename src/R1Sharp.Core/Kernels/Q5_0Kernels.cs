// Q5_0 weights (f16 d, 4 bytes qh holding the fifth bit of each of the 32 values, 16 bytes of nibbles laid out as
// Q4_0's; w = d·(q − 16)) with Q8_0 activations in ggml's block layout. The fifth bits are spread to bytes with a
// byte shuffle and a compare (ggml's bytes_from_bits_32); then, as for Q4_0, Σ (q − 16)·y = vpmaddubsw(q, y) −
// vpmaddubsw(16, y) with the unsigned q on the unsigned side, and one vpmaddwd by ones. Q5_0 is what llama.cpp's
// K-quant mixes fall back to for rows that are not whole 256-blocks (DeepSeek-V2-Lite's 1408-wide expert rows).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal static unsafe class Q5_0Kernels
{
    private const int BlockBytes = 22, ActBlockBytes = 34;

    /// <summary>The 32 five-bit values of one block, unsigned (0..31), in value order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Values32(byte* block)
    {
        Vector128<byte> v = Vector128.Load(block + 6);
        var nibbles = Vector256.Create(v, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
        // byte i of the broadcast qh word is picked by i / 8 within each lane, then its bit i % 8 tested
        var bytes = Avx2.Shuffle(Vector256.Create(*(uint*)(block + 2)).AsByte(),
            Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
        var set = Vector256.Equals(bytes | Vector256.Create(0x7fbfdfeff7fbfdfeUL).AsByte(), Vector256<byte>.AllBitsSet);
        return nibbles | (set & Vector256.Create((byte)0x10));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDot(Vector256<byte> q, Vector256<sbyte> y) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(
            Avx2.MultiplyAddAdjacent(q, y) - Avx2.MultiplyAddAdjacent(Vector256.Create((byte)16), y), Vector256.Create((short)1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* w, byte* a) => HalfConvert.F16ToF32(*(ushort*)w) * HalfConvert.F16ToF32(*(ushort*)a);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        Vector256<float> acc0 = default, acc1 = default;
        int nb = n / 32, b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, act += 2 * ActBlockBytes)
        {
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), BlockDot(Values32(w), Vector256.Load((sbyte*)act + 2)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w + BlockBytes, act + ActBlockBytes)),
                BlockDot(Values32(w + BlockBytes), Vector256.Load((sbyte*)act + ActBlockBytes + 2)), acc1);
        }
        if (b < nb) acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), BlockDot(Values32(w), Vector256.Load((sbyte*)act + 2)), acc0);
        return Vector256.Sum(acc0 + acc1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4_256(byte* w, byte* act, long actStride, int n, float* y, long yStride)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = act, a1 = act + actStride, a2 = act + 2 * actStride, a3 = act + 3 * actStride;
        for (int b = 0; b < n / 32; b++, w += BlockBytes)
        {
            long o = (long)b * ActBlockBytes;
            Vector256<byte> q = Values32(w);
            float dw = HalfConvert.F16ToF32(*(ushort*)w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a0 + o))), BlockDot(q, Vector256.Load((sbyte*)(a0 + o) + 2)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a1 + o))), BlockDot(q, Vector256.Load((sbyte*)(a1 + o) + 2)), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a2 + o))), BlockDot(q, Vector256.Load((sbyte*)(a2 + o) + 2)), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a3 + o))), BlockDot(q, Vector256.Load((sbyte*)(a3 + o) + 2)), acc3);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }

    /// <summary>256-bit at both SIMD levels: a 512-bit form would only split into the same two halves on this CPU.</summary>
    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 or SimdLevel.V256 => QuantBlockKernels.Create<Q5_0Block>() with { Dot = &Dot256, DotTile = &Dot4_256, TileTokens = 4 },
        _ => QuantBlockKernels.Create<Q5_0Block>(),
    };
}
