// Shared inputs and tolerances for the kernel tests.
using R1Sharp.Kernels;

namespace R1Sharp.Tests.Kernels;

internal static class KernelTestData
{
    /// <summary>Lengths that hit every vector-loop tail.</summary>
    public static readonly int[] AwkwardLengths = [0, 1, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 255, 257, 1000, 4099];

    /// <summary>Q8_0 row lengths: 1..16+ blocks, around the 8- and 16-block groups of the SIMD paths.</summary>
    public static readonly int[] BlockLengths = [32, 64, 96, 7 * 32, 8 * 32, 15 * 32, 16 * 32, 17 * 32, 33 * 32, 4096 + 32];

    /// <summary>Float-type dots: SIMD vs scalar differ only in summation order.</summary>
    public const double FloatDotRelTol = 1e-5;
    /// <summary>Q8_0 dots: integer block dots are exact; only the float accumulation order differs.</summary>
    public const double Q8DotRelTol = 1e-5;

    public static TheoryData<int> Levels()
    {
        var data = new TheoryData<int>();
        foreach (var l in Simd.Supported) data.Add((int)l);
        return data;
    }

    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return x;
    }

    /// <summary>Random values with a few outliers and exact zeros, like real activations.</summary>
    public static float[] Activations(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = rng.NextDouble();
            x[i] = u < 0.02 ? 0f : u < 0.04 ? (float)(rng.NextDouble() * 40 - 20) : (float)(rng.NextDouble() * 2 - 1);
        }
        return x;
    }

    /// <summary>|a - b| within rel * (scale + tiny), where scale is Σ|w·x| of the dot.</summary>
    public static void Close(double expected, double actual, double scale, double rel, string what)
    {
        double tol = rel * scale + 1e-30;
        Assert.True(Math.Abs(expected - actual) <= tol, $"{what}: expected {expected}, got {actual}, |diff| {Math.Abs(expected - actual)} > {tol}");
    }
}
