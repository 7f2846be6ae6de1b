// Seeded inputs and small helpers shared by the quant tests.
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Quants;

internal static class QuantTestData
{
    /// <summary>ggml's IQ, ternary and MXFP4 types.</summary>
    public static readonly GgmlType[] IqTypes =
    [
        GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M,
        GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4,
    ];

    public static readonly GgmlType[] AllTypes =
    [
        GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q8_1,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K, .. IqTypes,
    ];

    public static readonly GgmlType[] WeightTypes =
    [
        GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, .. IqTypes,
    ];

    public static TheoryData<GgmlType> All => new(AllTypes);
    public static TheoryData<GgmlType> Weights => new(WeightTypes);

    /// <summary>Standard normal values (Box–Muller), reproducible from the seed.</summary>
    public static float[] Gaussian(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    public static ushort HalfBits(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    public static void PutHalf(byte[] b, int offset, float v)
    {
        ushort h = HalfBits(v);
        Assert.Equal(v, (float)BitConverter.UInt16BitsToHalf(h)); // test scales must be exact in f16
        b[offset] = (byte)h;
        b[offset + 1] = (byte)(h >> 8);
    }

    public static float[] Dequantize(GgmlType t, byte[] q, int n)
    {
        var y = new float[n];
        R1Sharp.Kernels.Quants.QuantFormats.Get(t).Dequantize(q, y);
        return y;
    }

    public static byte[] Quantize(GgmlType t, float[] x)
    {
        var q = new byte[GgmlTypeInfo.RowBytes(t, x.Length)];
        QuantizeInto(R1Sharp.Kernels.Quants.QuantFormats.Get(t), x, q);
        return q;
    }

    /// <summary>
    /// What llama.cpp's quantize writes without an imatrix (ggml_quantize_chunk), or, for the types that need one, with
    /// every column equally important.
    /// </summary>
    public static void QuantizeInto(R1Sharp.Kernels.Quants.QuantFormat f, ReadOnlySpan<float> x, Span<byte> q) =>
        f.Quantize(x, q, f.RequiresImportance ? Enumerable.Repeat(1f, x.Length).ToArray() : default);

    public static double Rms(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float v in x) s += (double)v * v;
        return x.Length == 0 ? 0 : Math.Sqrt(s / x.Length);
    }

    public static double RmsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) { double d = (double)a[i] - b[i]; s += d * d; }
        return a.Length == 0 ? 0 : Math.Sqrt(s / a.Length);
    }
}
