// Q5_0 weights (f16 d, 4 bytes qh holding the fifth bit of each of the 32 values, 16 bytes of nibbles laid out as
// Q4_0's; w = d·(q − 16)) with Q8_0 activations in ggml's block layout. The fifth bits are spread to bytes with a
// byte shuffle and a compare (ggml's bytes_from_bits_32); the dots are LegacyBlockDot's with offset 16. Q5_0 is what llama.cpp's
// K-quant mixes fall back to for rows that are not whole 256-blocks (DeepSeek-V2-Lite's 1408-wide expert rows). An
// in-memory model's Q5_0 weights are rewritten at load into groups of 16 rows (512 bits) or 8 (256 bits) read by
// Q5_0Interleaved; these single-row dots serve the file's own layout (--no-repack, and the tiles of unrepacked prefill).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace R1Sharp.Kernels;

internal unsafe struct Q5_0Kernels : ILegacyBlock
{
    public static int BlockBytes => 22;
    public static byte Offset => 16;

    /// <summary>The 32 five-bit values of one block, unsigned (0..31), in value order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Values(byte* block)
    {
        Vector128<byte> v = Vector128.Load(block + 6);
        var nibbles = Vector256.Create(v, Vector128.ShiftRightLogical(v.AsUInt16(), 4).AsByte()) & Vector256.Create((byte)0x0F);
        // byte i of the broadcast qh word is picked by i / 8 within each lane, then its bit i % 8 tested
        var bytes = Avx2.Shuffle(Vector256.Create(*(uint*)(block + 2)).AsByte(),
            Vector256.Create(0x0000000000000000UL, 0x0101010101010101UL, 0x0202020202020202UL, 0x0303030303030303UL).AsByte());
        var set = Vector256.Equals(bytes | Vector256.Create(0x7fbfdfeff7fbfdfeUL).AsByte(), Vector256<byte>.AllBitsSet);
        return nibbles | (set & Vector256.Create((byte)0x10));
    }

    /// <summary>
    /// The single-row dots are 256-bit at both SIMD levels (a 512-bit form would only split into the same two halves on
    /// this CPU); with AVX-512 VBMI the values are unpacked by <see cref="Q5_0Vbmi"/>. The interleaved layout is 16 rows
    /// of 512 bits at V512, 8 rows of 256 at V256.
    /// </summary>
    public static TypeKernels Create(SimdLevel level) => level switch
    {
        SimdLevel.V512 when Avx512Vbmi.VL.IsSupported =>
            Q5_0Interleaved.Use512(LegacyBlockDot.WithSums<Q5_0Vbmi>(QuantBlockKernels.Create<Q5_0Block>())),
        SimdLevel.V512 =>
            Q5_0Interleaved.Use512(LegacyBlockDot.WithSums<Q5_0Kernels>(QuantBlockKernels.Create<Q5_0Block>())),
        SimdLevel.V256 =>
            Q5_0Interleaved.Use(LegacyBlockDot.WithSums<Q5_0Kernels>(QuantBlockKernels.Create<Q5_0Block>())),
        _ => Vector128BlockDots.Legacy<Q5_0Values>(QuantBlockKernels.Create<Q5_0Block>(), level),
    };
}

/// <summary>
/// Q5_0 blocks unpacked with AVX-512 VL/BW/VBMI in 6 instructions instead of 10: the 16 nibble bytes broadcast to both
/// lanes and shifted by 0 and 4 with one vpsrlvw; the fifth bits by one vpmultishiftqb, which gives byte i the 8 bits
/// of the broadcast qh word from bit i − 4 (mod 64), so bit i lands on 0x10; one vpternlogd merges nibbles | (bits &amp; 0x10).
/// </summary>
internal unsafe struct Q5_0Vbmi : ILegacyBlock
{
    public static int BlockBytes => 22;
    public static byte Offset => 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Values(byte* block)
    {
        Vector256<ushort> qs = Avx2.BroadcastVector128ToVector256(block + 6).AsUInt16();
        Vector256<byte> nibbles = Avx512BW.VL.ShiftRightLogicalVariable(qs, Vector256.Create(Vector128<ushort>.Zero, Vector128.Create((ushort)4))).AsByte()
            & Vector256.Create((byte)0x0F);
        // qh in both halves of each qword (one vpbroadcastd): bit 4 of byte i reads bit i whatever the upper half holds
        Vector256<byte> bits = Avx512Vbmi.VL.MultiShift(BitControl(), Vector256.Create(*(uint*)(block + 2)).AsUInt64());
        return Avx512F.VL.TernaryLogic(nibbles, bits, Vector256.Create((byte)0x10), 0xF8); // a | (b & c)
    }

    /// <summary>(i − 4) mod 64 for byte i: the vpmultishiftqb control that moves qh bit i to bit 4 of byte i.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> BitControl() => Vector256.Create(
        (byte)60, 61, 62, 63, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27);
}
