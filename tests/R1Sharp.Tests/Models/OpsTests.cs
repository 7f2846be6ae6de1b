using R1Sharp.Models;

namespace R1Sharp.Tests.Models;

public sealed unsafe class OpsTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(17)]
    [InlineData(1536)]
    [InlineData(1539)]
    public void RmsNormMatchesTheScalarDoubleSum(int dim)
    {
        var rng = new Random(dim);
        const int n = 3;
        var x = new float[n * dim];
        var w = new float[dim];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 8 - 4);
        for (int i = 0; i < dim; i++) w[i] = (float)(rng.NextDouble() + 0.5);
        var y = new float[n * dim];
        fixed (float* pw = w) Ops.RmsNorm(x, y, n, dim, pw, 1e-6f);
        for (int t = 0; t < n; t++)
        {
            double sum = 0;
            for (int i = 0; i < dim; i++) sum += x[t * dim + i] * x[t * dim + i];
            float scale = 1.0f / MathF.Sqrt((float)(sum / dim) + 1e-6f);
            for (int i = 0; i < dim; i++)
            {
                float expected = x[t * dim + i] * scale * w[i];
                Assert.True(MathF.Abs(y[t * dim + i] - expected) <= 1e-6f * MathF.Abs(expected), $"row {t}, value {i}: {y[t * dim + i]} vs {expected}");
            }
        }
    }
}
