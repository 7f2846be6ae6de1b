// The reference dot products against the plain dot of the two dequantized rows: the integer sums per sub-block
// and the scale arithmetic must give the same number up to float rounding.
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;
using static R1Sharp.Tests.Quants.QuantTestData;

namespace R1Sharp.Tests.Quants;

public sealed class QuantVecDotTests
{
    /// <summary>Allowed |dot − Σ w·x| relative to Σ |w·x|: float rounding of block partial sums, nothing more.</summary>
    private const double DotTolerance = 2e-6;

    [Theory]
    [MemberData(nameof(Weights), MemberType = typeof(QuantTestData))]
    public void VecDotEqualsDotOfDequantizedRows(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        foreach (int n in new[] { 256, 512, 4096 })
        {
            for (int seed = 0; seed < 3; seed++)
            {
                var wq = Quantize(type, Gaussian(n, 100 + seed));
                // activations with a nonzero mean, so the min/bias terms (Q4_1, Q5_1, the K mins) matter
                var xf = Gaussian(n, 200 + seed).Select(v => v + 0.3f).ToArray();
                var xq = Quantize(f.VecDotType, xf);
                AssertDot(type, n, wq, xq, $"n={n} seed={seed}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Weights), MemberType = typeof(QuantTestData))]
    public void VecDotOnArbitraryBlockBytes(GgmlType type)
    {
        // every quant and scale bit pattern, not only what the quantizer produces (f16 scales kept finite and small)
        var f = QuantFormats.Get(type);
        const int n = 512;
        var rng = new Random((int)type);
        var wq = new byte[GgmlTypeInfo.RowBytes(type, n)];
        rng.NextBytes(wq);
        foreach (int o in HalfOffsets(type))
            for (int b = 0; b < wq.Length; b += f.BlockBytes) wq[b + o + 1] &= 0x3B;
        if (type == GgmlType.IQ1_M) // its f16 scale's high byte is the top nibbles of scale words 2 and 3
            for (int b = 0; b < wq.Length; b += f.BlockBytes) { wq[b + 53] &= 0xBF; wq[b + 55] &= 0x3F; }
        if (type == GgmlType.MXFP4) // E8M0 exponents near 1 (2^−8 .. 2^7), not 2^127
            for (int b = 0; b < wq.Length; b += f.BlockBytes) wq[b] = (byte)(120 + wq[b] % 16);
        var xq = Quantize(f.VecDotType, Gaussian(n, 7).Select(v => v - 0.2f).ToArray());
        AssertDot(type, n, wq, xq, "random bytes");
    }

    [Theory]
    [MemberData(nameof(Weights), MemberType = typeof(QuantTestData))]
    public void VecDotOfEmptyRowsIsZero(GgmlType type) =>
        Assert.Equal(0f, QuantFormats.Get(type).VecDotReference!(0, [], []));

    private static void AssertDot(GgmlType type, int n, byte[] wq, byte[] xq, string what)
    {
        var f = QuantFormats.Get(type);
        var w = Dequantize(type, wq, n);
        var x = Dequantize(f.VecDotType, xq, n);
        double expected = 0, magnitude = 0;
        for (int i = 0; i < n; i++)
        {
            expected += (double)w[i] * x[i];
            magnitude += Math.Abs((double)w[i] * x[i]);
        }
        // Q8_1 also carries s = f16(d·Σq); the Q4_1/Q5_1 dots use it for the min term, so allow its f16 rounding
        if (f.VecDotType == GgmlType.Q8_1) magnitude += Q8_1SumRounding(xq, wq, type);
        float actual = f.VecDotReference!(n, wq, xq);
        Assert.True(Math.Abs(actual - expected) <= DotTolerance * magnitude + 1e-6,
            $"{type} {what}: vec_dot {actual}, dequantized dot {expected}, |diff| {Math.Abs(actual - expected):E2}, Σ|wx| {magnitude:E2}");
    }

    /// <summary>Σ over blocks of |m_w| · |s − d·Σq| / DotTolerance: the part of the Q8_1 dot that rests on the stored s.</summary>
    private static double Q8_1SumRounding(byte[] xq, byte[] wq, GgmlType type)
    {
        int wb = GgmlTypeInfo.BlockBytes(type);
        double total = 0;
        for (int b = 0; b < xq.Length / 36; b++)
        {
            float d = (float)BitConverter.ToHalf(xq, 36 * b), s = (float)BitConverter.ToHalf(xq, 36 * b + 2);
            int sum = 0;
            for (int i = 0; i < 32; i++) sum += (sbyte)xq[36 * b + 4 + i];
            float m = (float)BitConverter.ToHalf(wq, wb * b + 2);
            total += Math.Abs(m) * Math.Abs(s - (double)d * sum);
        }
        return total / DotTolerance;
    }

    private static int[] HalfOffsets(GgmlType type) => type switch
    {
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => [0],
        GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
        GgmlType.Q2_K => [80, 82],
        GgmlType.Q3_K => [108],
        GgmlType.Q6_K => [208],
        GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ3_XXS or GgmlType.IQ3_S or GgmlType.IQ1_S
            or GgmlType.IQ4_NL or GgmlType.IQ4_XS => [0],
        GgmlType.TQ1_0 => [52],
        GgmlType.TQ2_0 => [64],
        GgmlType.IQ1_M or GgmlType.MXFP4 => [],
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
