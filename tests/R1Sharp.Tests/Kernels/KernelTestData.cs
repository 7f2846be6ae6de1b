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

    /// <summary>
    /// Runs <paramref name="k"/>'s packed dot on <see cref="TypeKernels.PackedRows"/> weight rows (rowBytes apart) against 4,
    /// 3, 2 and 1 packed groups, asserts what holds whatever the arithmetic (a row alone gives what it gives in a pair,
    /// fewer groups give the same results, nothing is written past the rows) and hands each result to
    /// check(groups, token, row, value).
    /// </summary>
    public static unsafe void ForEachPackedResult(in TypeKernels k, byte* w, long rowBytes, byte* packed, long groupBytes, int n,
        Action<int, int, int, float> check)
    {
        const int R = TypeKernels.PackedRows, G = TypeKernels.PackGroupTokens;
        float[]? all = null;
        for (int groups = TypeKernels.MaxPackedGroups; groups >= 1; groups--)
        {
            int tokens = groups * G;
            var y = new float[tokens * (R + 1)];
            var y1 = new float[tokens];
            fixed (float* py = y) k.DotPacked(w, rowBytes, R, packed, groupBytes, groups, n, py, R + 1);
            fixed (float* py = y1) k.DotPacked(w + rowBytes, rowBytes, 1, packed, groupBytes, groups, n, py, 1);
            all ??= y;
            for (int t = 0; t < tokens; t++)
            {
                Assert.Equal(y[t * (R + 1) + 1], y1[t]); // a row alone matches it in a pair
                for (int r = 0; r < R; r++)
                {
                    check(groups, t, r, y[t * (R + 1) + r]);
                    Assert.Equal(all[t * (R + 1) + r], y[t * (R + 1) + r]); // fewer groups, same result
                }
                Assert.Equal(0f, y[t * (R + 1) + R]);
            }
        }
    }
}
