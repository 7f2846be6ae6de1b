// Q4_0 weights (f16 d, 16 bytes of nibbles: value j < 16 is the low nibble of byte j, value 16 + j its high nibble;
// w = d·(nibble − 8)) with Q8_0 activations: ggml's block layout, with LegacyBlockDot's block sums for its 256-bit dot.
// The 256-bit dots are LegacyBlockDot's with offset 8; the 512-bit path here does two blocks per vector.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal unsafe struct Q4_0Kernels : ILegacyBlock
{
    private const int ActBlockBytes = 34;

    public static int BlockBytes => 18;
    public static byte Offset => 8;

    public static Vector256<byte> Values(byte* block) => Nibbles32(block + 2);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Nibbles32(byte* qs)
    {
        Vector128<byte> v = Vector128.Load(qs);
        return Vector256.Create(v, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
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
            var d = Vector512.Create(Vector256.Create(LegacyBlockDot.Scale(w, act)), Vector256.Create(LegacyBlockDot.Scale(w + BlockBytes, act + ActBlockBytes)));
            acc = Vector512.FusedMultiplyAdd(d, Avx512F.ConvertToVector512Single(s), acc);
        }
        if (b < nb) tail = Vector256.Create(LegacyBlockDot.Scale(w, act)) * LegacyBlockDot.BlockDot<Q4_0Kernels>(Nibbles32(w + 2), Vector256.Load((sbyte*)act + 2));
        return Vector512.Sum(acc) + Vector256.Sum(tail);
    }

    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 => QuantBlockKernels.Create<Q4_0Block>() with { Dot = &Dot512, DotTile = &LegacyBlockDot.Dot4_256<Q4_0Kernels>, TileTokens = 4 },
        SimdLevel.V256 => LegacyBlockDot.WithSums<Q4_0Kernels>(QuantBlockKernels.Create<Q4_0Block>()),
        _ => Vector128BlockDots.Legacy<Q4_0Values>(QuantBlockKernels.Create<Q4_0Block>(), level),
    };
}
