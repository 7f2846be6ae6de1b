using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class QuantizationTests
{
    [Fact]
    public void Q8_0Reference_MatchesGgmlOnAKnownBlock()
    {
        // amax 127 -> d = 1, so q = roundf(x) with halves away from zero
        var x = new float[32];
        for (int i = 0; i < 32; i++) x[i] = i - 16.5f;
        x[31] = 127f;
        var q = new byte[34];
        Quantization.QuantizeRow(GgmlType.Q8_0, x, q);
        Assert.Equal(1.0f, (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(q, 0)));
        Assert.Equal(-17, (sbyte)q[2]);      // -16.5 -> -17
        Assert.Equal(-16, (sbyte)q[3]);      // -15.5 -> -16
        Assert.Equal(14, (sbyte)q[32]);      // 13.5 -> 14
        Assert.Equal(127, (sbyte)q[33]);
    }

    [Fact]
    public void Q8_0Reference_AllZeroBlockHasZeroScale()
    {
        var q = new byte[34];
        Quantization.QuantizeRow(GgmlType.Q8_0, new float[32], q);
        Assert.All(q, b => Assert.Equal(0, b));
    }

    [Theory]
    [MemberData(nameof(KernelTestData.Levels), MemberType = typeof(KernelTestData))]
    public void Q8_0_RoundTripErrorIsAtMostHalfAStep(int level)
    {
        var table = KernelTable.Create((SimdLevel)level);
        foreach (int n in KernelTestData.BlockLengths)
        {
            float[] x = KernelTestData.Activations(n, n);
            var q = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, n)];
            var back = new float[n];
            Quantization.QuantizeRow(GgmlType.Q8_0, x, q, table);
            Quantization.DequantizeRow(GgmlType.Q8_0, q, back, table);
            for (int b = 0; b < n / 32; b++)
            {
                float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(q, b * 34));
                for (int j = 0; j < 32; j++)
                {
                    int i = b * 32 + j;
                    // d is rounded to F16 after q was computed with the unrounded scale: allow that slack
                    Assert.True(Math.Abs(x[i] - back[i]) <= d * 0.5 + Math.Abs(x[i]) * 1e-3 + 1e-7, $"n {n} i {i}: {x[i]} vs {back[i]}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestData.Levels), MemberType = typeof(KernelTestData))]
    public void QuantizeAndDequantize_MatchScalarExactly(int level)
    {
        var scalar = KernelTable.Create(SimdLevel.Scalar);
        var table = KernelTable.Create((SimdLevel)level);
        foreach (var type in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0 })
        {
            int[] lengths = GgmlTypeInfo.BlockSize(type) == 1 ? KernelTestData.AwkwardLengths : KernelTestData.BlockLengths;
            foreach (int n in lengths)
            {
                float[] x = KernelTestData.Activations(n, 100 + n);
                if (n > 10)
                {
                    x[3] = float.PositiveInfinity;
                    x[4] = 65520f;       // rounds to F16 infinity
                    x[5] = 1e-6f;        // F16 subnormal
                    x[6] = -0f;
                    x[7] = 3.3895314e38f;
                }
                if (type == GgmlType.Q8_0) Array.Clear(x, 3, Math.Min(5, n - 3)); // keep Q8_0 blocks finite
                long bytes = GgmlTypeInfo.RowBytes(type, n);
                byte[] a = new byte[bytes], b = new byte[bytes];
                Quantization.QuantizeRow(type, x, a, scalar);
                Quantization.QuantizeRow(type, x, b, table);
                Assert.True(a.AsSpan().SequenceEqual(b), $"{type} n {n}: quantized rows differ");
                float[] fa = new float[n], fb = new float[n];
                Quantization.DequantizeRow(type, a, fa, scalar);
                Quantization.DequantizeRow(type, a, fb, table);
                for (int i = 0; i < n; i++)
                {
                    Assert.True(BitConverter.SingleToInt32Bits(fa[i]) == BitConverter.SingleToInt32Bits(fb[i]), $"{type} n {n} i {i}: {fa[i]} vs {fb[i]}");
                }
            }
        }
    }

    [Fact]
    public void F16AndBF16_RowsRoundTripKnownValues()
    {
        float[] x = [1f, -2.5f, 0.1f, 65504f, 1e-7f];
        var h = new byte[x.Length * 2];
        var back = new float[x.Length];
        Quantization.QuantizeRow(GgmlType.F16, x, h);
        Quantization.DequantizeRow(GgmlType.F16, h, back);
        for (int i = 0; i < x.Length; i++) Assert.Equal((float)(Half)x[i], back[i]);
        Quantization.QuantizeRow(GgmlType.BF16, x, h);
        Quantization.DequantizeRow(GgmlType.BF16, h, back);
        Assert.Equal(1f, back[0]);
        Assert.Equal(-2.5f, back[1]);
        Assert.Equal(0.10009765625f, back[2]); // 0x3DCD
    }

    [Fact]
    public void RejectsLengthsThatAreNotWholeBlocks()
    {
        Assert.Throws<ArgumentException>(() => Quantization.QuantizeRow(GgmlType.Q8_0, new float[33], new byte[68]));
        Assert.Throws<ArgumentException>(() => Quantization.DequantizeRow(GgmlType.Q8_0, new byte[33], new float[32]));
        Assert.Throws<NotSupportedException>(() => Quantization.DequantizeRow(GgmlType.Q8_K, new byte[292], new float[256]));
    }
}
