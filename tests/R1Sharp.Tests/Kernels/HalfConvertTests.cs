using System.Runtime.Intrinsics;
using R1Sharp.Kernels;

namespace R1Sharp.Tests.Kernels;

public sealed class HalfConvertTests
{
    [Fact]
    public void F16ToF32_Scalar_IsExactForEveryHalf()
    {
        for (int h = 0; h < 65536; h++) AssertSameF16(h, HalfConvert.F16ToF32((ushort)h));
    }

    [Fact]
    public void RoundToF16_EqualsTheRoundTripThroughHalf()
    {
        // every half and the floats just around it and halfway to the next (ties), both signs, plus range edges and specials
        var xs = new List<float> { 0f, -0f, 65504f, 65519.996f, 65520f, 65536f, 1e6f, 6.1035156e-5f, 6.1035152e-5f, 5.96e-8f, 1e-10f,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.Epsilon, float.MaxValue };
        for (int h = 0; h < 0x7C00; h++)
        {
            float a = HalfConvert.F16ToF32((ushort)h), b = HalfConvert.F16ToF32((ushort)(h + 1));
            xs.AddRange([a, BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(a) + 1), (a + b) / 2,
                BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits((a + b) / 2) + 1), BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits((a + b) / 2) - 1)]);
        }
        var rng = new Random(5);
        for (int i = 0; i < 100_000; i++) xs.Add(BitConverter.Int32BitsToSingle(rng.Next()));
        foreach (float x in xs)
        {
            foreach (float v in new[] { x, -x })
            {
                float expected = HalfConvert.F16ToF32(HalfConvert.F32ToF16(v));
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(HalfConvert.RoundToF16(v)) || float.IsNaN(expected) && float.IsNaN(HalfConvert.RoundToF16(v)),
                    $"{v:R}: expected {expected:R}, got {HalfConvert.RoundToF16(v):R}");
            }
        }
    }

    [Fact]
    public void F16ToF32_Vector512_IsExactForEveryHalf()
    {
        if (!Simd.IsSupported(SimdLevel.V512)) return;
        for (int h = 0; h < 65536; h += 16)
        {
            var v = HalfConvert.F16ToF32(Vector512.Create(h) + Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
            for (int i = 0; i < 16; i++) AssertSameF16(h + i, v[i]);
        }
    }

    [Fact]
    public void F16ToF32_Vector256_IsExactForEveryHalf()
    {
        if (!Simd.IsSupported(SimdLevel.V256)) return;
        for (int h = 0; h < 65536; h += 8)
        {
            var v = HalfConvert.F16ToF32(Vector256.Create(h) + Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7));
            for (int i = 0; i < 8; i++) AssertSameF16(h + i, v[i]);
        }
    }

    [Fact]
    public void BlockScaleF16ToF32_IsExactForEveryHalf()
    {
        for (int h = 0; h < 65536; h += 4)
        {
            var v = BlockScale.F16ToF32(Vector128.Create(h, h + 1, h + 2, h + 3 | unchecked((int)0xABCD0000)));
            for (int i = 0; i < 4; i++) AssertSameF16(h + i, v[i]);
            AssertSameF16(h, BlockScale.F16ToF32((ushort)h));
        }
        for (int h = 0; h < 65536; h += 16)
        {
            // upper halves of the lanes are garbage, as the gathers of the Q8_0 kernels leave them
            var v = BlockScale.F16ToF32(Vector512.Create(h) + Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                | Vector512.Create(unchecked((int)0x5A5A0000)));
            for (int i = 0; i < 16; i++) AssertSameF16(h + i, v[i]);
        }
    }

    private static void AssertSameF16(int h, float actual)
    {
        float expected = (float)BitConverter.UInt16BitsToHalf((ushort)h);
        if (float.IsNaN(expected))
        {
            Assert.True(float.IsNaN(actual), $"half 0x{h:x4} should be NaN, got {actual}");
            Assert.Equal(BitConverter.SingleToInt32Bits(expected) < 0, BitConverter.SingleToInt32Bits(actual) < 0);
        }
        else
        {
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual), $"half 0x{h:x4}: {expected} vs {actual}");
        }
    }

    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.0f, 0xC000)]
    [InlineData(0f, 0x0000)]
    [InlineData(-0f, 0x8000)]
    [InlineData(float.PositiveInfinity, 0x7F80)]
    [InlineData(1.00390625f, 0x3F80)] // 1 + 2^-8: a tie, rounds to even (down)
    [InlineData(1.01171875f, 0x3F82)] // 1 + 3 * 2^-8: a tie, rounds to even (up)
    [InlineData(float.MaxValue, 0x7F80)] // rounds up to infinity
    [InlineData(3.3895314e38f, 0x7F7F)] // the largest finite bfloat16
    public void F32ToBF16_RoundsToNearestEven(float x, int expected) => Assert.Equal(expected, HalfConvert.F32ToBF16(x));

    [Fact]
    public void F32ToBF16_KeepsNaNQuiet()
    {
        ushort signalling = HalfConvert.F32ToBF16(BitConverter.UInt32BitsToSingle(0x7F800001));
        Assert.Equal(0x7FC0, signalling);
        Assert.True(float.IsNaN(HalfConvert.BF16ToF32(signalling)));
    }

    [Fact]
    public void F32ToBF16_VectorsMatchScalar()
    {
        var rng = new Random(5);
        var bits = new uint[4096];
        for (int i = 0; i < bits.Length; i++) bits[i] = (uint)rng.NextInt64(0, 1L << 32);
        uint[] specials = [0x7F800000, 0xFF800000, 0x7F800001, 0x7FFFFFFF, 0xFFC00000, 0x7F7FFFFF, 0x00000001, 0x80000000, 0x3F808000, 0x3F818000];
        specials.CopyTo(bits, 0);
        for (int i = 0; i + 16 <= bits.Length; i += 16)
        {
            var f = Vector512.Create(bits.AsSpan(i, 16)).AsSingle();
            Vector512<uint> r512 = Simd.IsSupported(SimdLevel.V512) ? HalfConvert.F32ToBF16(f) : default;
            Vector256<uint> lo = Simd.IsSupported(SimdLevel.V256) ? HalfConvert.F32ToBF16(f.GetLower()) : default;
            for (int j = 0; j < 16; j++)
            {
                ushort expected = HalfConvert.F32ToBF16(BitConverter.UInt32BitsToSingle(bits[i + j]));
                if (Simd.IsSupported(SimdLevel.V512)) Assert.Equal(expected, (ushort)r512[j]);
                if (j < 8 && Simd.IsSupported(SimdLevel.V256)) Assert.Equal(expected, (ushort)lo[j]);
            }
        }
    }
}
