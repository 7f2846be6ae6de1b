// Quantize → dequantize with the reference functions: the relative RMS error (RMS of the error over RMS of the
// row) stays under a per-type bound, measured on seeded Gaussian rows of 4096 values; special rows (zeros,
// constants, a large outlier) behave.
using R1Sharp.Tensors;
using Xunit.Abstractions;
using static R1Sharp.Tests.Quants.QuantTestData;

namespace R1Sharp.Tests.Quants;

public sealed class QuantRoundTripTests(ITestOutputHelper output)
{
    // Bounds on RMS(error) / RMS(x) for N(0, 1) rows of 4096 values, seeds 1..3. Measured worst case in brackets.
    private const double Q4_0Bound = 0.095; // measured 0.0879
    private const double Q4_1Bound = 0.087; // measured 0.0809
    private const double Q5_0Bound = 0.048; // measured 0.0441
    private const double Q5_1Bound = 0.042; // measured 0.0387
    private const double Q8_0Bound = 0.006; // measured 0.00545
    private const double Q8_1Bound = 0.006; // measured 0.00545
    private const double Q2_KBound = 0.320; // measured 0.3021
    private const double Q3_KBound = 0.170; // measured 0.1565
    private const double Q4_KBound = 0.080; // measured 0.0734
    private const double Q5_KBound = 0.040; // measured 0.0372
    private const double Q6_KBound = 0.020; // measured 0.0182
    private const double Q8_KBound = 0.008; // measured 0.00714
    // the IQ, ternary and MXFP4 types as llama.cpp's quantize writes them without an imatrix (IQ2_XXS, IQ2_XS, IQ1_S,
    // which need one, with every column equally important). Ternary types fit ternary weights, not Gaussian ones.
    private const double IQ2_XXSBound = 0.36; // measured 0.3452
    private const double IQ2_XSBound = 0.32; // measured 0.3017
    private const double IQ2_SBound = 0.285; // measured 0.2696
    private const double IQ3_XXSBound = 0.23; // measured 0.2180
    private const double IQ3_SBound = 0.182; // measured 0.1728
    private const double IQ1_SBound = 0.52; // measured 0.4917
    private const double IQ1_MBound = 0.62; // measured 0.5914 (x² weights without an imatrix)
    private const double IQ4_NLBound = 0.082; // measured 0.0779
    private const double IQ4_XSBound = 0.083; // measured 0.0784
    private const double TernaryBound = 0.85; // measured 0.8133
    private const double MXFP4Bound = 0.121; // measured 0.1149

    private static double Bound(GgmlType t) => t switch
    {
        GgmlType.Q4_0 => Q4_0Bound,
        GgmlType.Q4_1 => Q4_1Bound,
        GgmlType.Q5_0 => Q5_0Bound,
        GgmlType.Q5_1 => Q5_1Bound,
        GgmlType.Q8_0 => Q8_0Bound,
        GgmlType.Q8_1 => Q8_1Bound,
        GgmlType.Q2_K => Q2_KBound,
        GgmlType.Q3_K => Q3_KBound,
        GgmlType.Q4_K => Q4_KBound,
        GgmlType.Q5_K => Q5_KBound,
        GgmlType.Q6_K => Q6_KBound,
        GgmlType.Q8_K => Q8_KBound,
        GgmlType.IQ2_XXS => IQ2_XXSBound,
        GgmlType.IQ2_XS => IQ2_XSBound,
        GgmlType.IQ2_S => IQ2_SBound,
        GgmlType.IQ3_XXS => IQ3_XXSBound,
        GgmlType.IQ3_S => IQ3_SBound,
        GgmlType.IQ1_S => IQ1_SBound,
        GgmlType.IQ1_M => IQ1_MBound,
        GgmlType.IQ4_NL => IQ4_NLBound,
        GgmlType.IQ4_XS => IQ4_XSBound,
        GgmlType.TQ1_0 or GgmlType.TQ2_0 => TernaryBound,
        GgmlType.MXFP4 => MXFP4Bound,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    private static double RelativeError(GgmlType t, float[] x)
    {
        var y = Dequantize(t, Quantize(t, x), x.Length);
        return RmsDiff(x, y) / Rms(x);
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void GaussianRowsStayUnderTheTypeBound(GgmlType type)
    {
        double worst = 0;
        for (int seed = 1; seed <= 3; seed++)
        {
            double e = RelativeError(type, Gaussian(4096, seed));
            worst = Math.Max(worst, e);
        }
        output.WriteLine($"{type}: worst relative RMS error {worst:F5}");
        Assert.True(worst < Bound(type), $"{type}: relative RMS error {worst:F5} ≥ bound {Bound(type)}");
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void ErrorScalesWithTheData(GgmlType type)
    {
        // the same row at 1e-3 and 1e3 times the scale: about the same relative error. Small rows lose a little
        // where an f16 block scale turns subnormal: Q6_K's d ≈ max|x|/4096 does below max|x| ≈ 0.25, and at
        // 1e-3 its error grows from 0.0176 to 0.0212 (ggml does the same; rows below ~1e-4 quantize to zero).
        double e1 = RelativeError(type, Gaussian(1024, 5));
        double small = RelativeError(type, Gaussian(1024, 5, 1e-3f));
        double large = RelativeError(type, Gaussian(1024, 5, 1e3f));
        output.WriteLine($"{type}: {e1:F5} at 1, {small:F5} at 1e-3, {large:F5} at 1e3");
        // MXFP4's scale is a power of two, so its error moves with where the data sits between two of them
        // (measured 0.1131 at 1, 0.1144 at 1e3)
        double slack = type == GgmlType.MXFP4 ? 1.03 : 1.01;
        Assert.True(large < slack * e1, $"{type}: {e1} at 1, {large} at 1e3");
        Assert.True(small < 1.25 * e1, $"{type}: {e1} at 1, {small} at 1e-3");
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void ZeroRowIsExactlyZero(GgmlType type)
    {
        var x = new float[512];
        var q = Quantize(type, x);
        var y = Dequantize(type, q, x.Length);
        Assert.All(y, v => Assert.Equal(0f, v));
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void ConstantRowsStayUnderTheTypeBound(GgmlType type)
    {
        foreach (float c in new[] { 0.75f, -3f, 0.01f })
        {
            var x = Enumerable.Repeat(c, 512).ToArray();
            double e = RelativeError(type, x);
            // MXFP4: 0.01 scales to 10.24 of its doubled E2M1 values, between 8 and 12, and comes back as 12 (0.172)
            double bound = type == GgmlType.MXFP4 ? 0.18 : Bound(type);
            output.WriteLine($"{type}: constant {c}: relative RMS error {e:F5}");
            Assert.True(e < bound, $"{type}: constant {c}: relative RMS error {e:F5} ≥ bound {bound}");
        }
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void OneLargeOutlierIsKeptAndTheOtherBlocksAreUnharmed(GgmlType type)
    {
        int bs = GgmlTypeInfo.BlockSize(type);
        var x = Gaussian(4096, 9);
        const int at = 1000;
        x[at] = 100f;
        var y = Dequantize(type, Quantize(type, x), x.Length);

        // the outlier sets its block's scale, so it comes back to within the scale's f16 rounding and the
        // rounding of the sub-block scale (6 bits or fewer for the K types)
        double outlierError = Math.Abs(y[at] - x[at]) / x[at];
        output.WriteLine($"{type}: outlier relative error {outlierError:F5}");
        // 1- and 2-bit grids round it further, to a grid point of 3 (IQ1) or 4 (IQ2_S) levels: measured IQ1_M 0.113,
        // IQ1_S 0.087, IQ2_S 0.060
        double bound = type is GgmlType.IQ1_S or GgmlType.IQ1_M or GgmlType.IQ2_S ? 0.13 : 0.05;
        Assert.True(outlierError < bound, $"{type}: outlier 100 came back as {y[at]}");

        // blocks without the outlier are quantized independently
        int blk = at / bs;
        var rest = x.Where((_, i) => i / bs != blk).ToArray();
        var restY = y.Where((_, i) => i / bs != blk).ToArray();
        double e = RmsDiff(rest, restY) / Rms(rest);
        Assert.True(e < Bound(type), $"{type}: blocks without the outlier: relative RMS error {e:F5} ≥ bound {Bound(type)}");
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void QuantizingIsDeterministicAndRequantizingIsStable(GgmlType type)
    {
        var x = Gaussian(1024, 11);
        var q1 = Quantize(type, x);
        Assert.Equal(q1, Quantize(type, x));
        // dequantized values are representable: a second round trip changes them much less than the first
        var y1 = Dequantize(type, q1, x.Length);
        var y2 = Dequantize(type, Quantize(type, y1), x.Length);
        Assert.True(RmsDiff(y1, y2) <= RmsDiff(x, y1) + 1e-7, $"{type}: requantizing moved values by {RmsDiff(y1, y2)}");
    }
}
