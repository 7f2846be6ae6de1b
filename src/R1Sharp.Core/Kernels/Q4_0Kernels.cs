// Q4_0 weights (f16 d, 16 bytes of nibbles: value j < 16 is the low nibble of byte j, value 16 + j its high nibble;
// w = d·(nibble − 8)) with Q8_0 activations in ggml's block layout.
// Σ (q − 8)·y = vpmaddubsw(q, y) − vpmaddubsw(8, y), both with the unsigned nibbles on the unsigned side; then one
// vpmaddwd by ones. The 512-bit path does two blocks per vector.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal static unsafe class Q4_0Kernels
{
    private const int BlockBytes = 18, ActBlockBytes = 34;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Nibbles32(byte* qs)
    {
        Vector128<byte> v = Vector128.Load(qs);
        return Vector256.Create(v, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDot256(Vector256<byte> q, Vector256<sbyte> y) =>
        Avx.ConvertToVector256Single(Avx2.MultiplyAddAdjacent(
            Avx2.MultiplyAddAdjacent(q, y) - Avx2.MultiplyAddAdjacent(Vector256.Create((byte)8), y), Vector256.Create((short)1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* w, byte* a) => HalfConvert.F16ToF32(*(ushort*)w) * HalfConvert.F16ToF32(*(ushort*)a);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot256(byte* w, byte* act, int n)
    {
        Vector256<float> acc0 = default, acc1 = default;
        int nb = n / 32, b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, act += 2 * ActBlockBytes)
        {
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), BlockDot256(Nibbles32(w + 2), Vector256.Load((sbyte*)act + 2)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w + BlockBytes, act + ActBlockBytes)),
                BlockDot256(Nibbles32(w + BlockBytes + 2), Vector256.Load((sbyte*)act + ActBlockBytes + 2)), acc1);
        }
        if (b < nb) acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(w, act)), BlockDot256(Nibbles32(w + 2), Vector256.Load((sbyte*)act + 2)), acc0);
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
            Vector256<byte> q = Nibbles32(w + 2);
            float dw = HalfConvert.F16ToF32(*(ushort*)w);
            acc0 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a0 + o))), BlockDot256(q, Vector256.Load((sbyte*)(a0 + o) + 2)), acc0);
            acc1 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a1 + o))), BlockDot256(q, Vector256.Load((sbyte*)(a1 + o) + 2)), acc1);
            acc2 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a2 + o))), BlockDot256(q, Vector256.Load((sbyte*)(a2 + o) + 2)), acc2);
            acc3 = Vector256.FusedMultiplyAdd(Vector256.Create(dw * HalfConvert.F16ToF32(*(ushort*)(a3 + o))), BlockDot256(q, Vector256.Load((sbyte*)(a3 + o) + 2)), acc3);
        }
        y[0] = Vector256.Sum(acc0);
        y[yStride] = Vector256.Sum(acc1);
        y[2 * yStride] = Vector256.Sum(acc2);
        y[3 * yStride] = Vector256.Sum(acc3);
    }

    /// <summary>Two blocks at once: 64 nibbles against two activation blocks, scales d_w·d_y per 256-bit half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot512(byte* w, byte* act, int n)
    {
        Vector512<float> acc = default;
        Vector256<float> tail = default;
        int nb = n / 32, b = 0;
        for (; b + 2 <= nb; b += 2, w += 2 * BlockBytes, act += 2 * ActBlockBytes)
        {
            Vector512<byte> q = Vector512.Create(Nibbles32(w + 2), Nibbles32(w + BlockBytes + 2));
            Vector512<sbyte> yq = Vector512.Create(Vector256.Load((sbyte*)act + 2), Vector256.Load((sbyte*)act + ActBlockBytes + 2));
            Vector512<int> s = Avx512BW.MultiplyAddAdjacent(
                Avx512BW.MultiplyAddAdjacent(q, yq) - Avx512BW.MultiplyAddAdjacent(Vector512.Create((byte)8), yq), Vector512.Create((short)1));
            var d = Vector512.Create(Vector256.Create(Scale(w, act)), Vector256.Create(Scale(w + BlockBytes, act + ActBlockBytes)));
            acc = Vector512.FusedMultiplyAdd(d, Avx512F.ConvertToVector512Single(s), acc);
        }
        if (b < nb) tail = Vector256.Create(Scale(w, act)) * BlockDot256(Nibbles32(w + 2), Vector256.Load((sbyte*)act + 2));
        return Vector512.Sum(acc) + Vector256.Sum(tail);
    }

    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 => QuantBlockKernels.Create<Q4_0Block>() with { Dot = &Dot512, DotTile = &Dot4_256, TileTokens = 4 },
        SimdLevel.V256 => QuantBlockKernels.Create<Q4_0Block>() with { Dot = &Dot256, DotTile = &Dot4_256, TileTokens = 4 },
        _ => QuantBlockKernels.Create<Q4_0Block>(),
    };
}
