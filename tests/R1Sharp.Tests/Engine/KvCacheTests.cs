using R1Sharp.Engine;
using R1Sharp.Tensors;
using Xunit;

namespace R1Sharp.Tests.Engine;

public unsafe class KvCacheTests
{
    [Fact]
    public void F16StoreRoundsAsHalfConversionDoesAndF32StoreKeepsTheValues()
    {
        var rng = new Random(5);
        // magnitudes across the F16 range, ties between two halves, subnormal halves, values past 65504
        var values = Enumerable.Range(0, 4000).Select(i => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-26, 18))))
            .Concat([1 + 1 / 2048f, 1 + 3 / 2048f, -(1 + 1 / 2048f), 65504f, 65520f, 1e6f, 0f, -0f, 6e-8f, 3e-8f])
            .ToArray();
        using var f16 = new KvCache(2, 3, 4, values.Length, values.Length, GgmlType.F16);
        using var f32 = new KvCache(2, 3, 4, values.Length, values.Length);
        Assert.Equal(GgmlType.F32, f32.Type);
        f16.Store(values, f16.V(1, 2), 3L * values.Length);
        f32.Store(values, f32.K(1, 2), 3L * values.Length);
        var halves = new ReadOnlySpan<Half>((Half*)f16.V(1, 2) + 3L * values.Length, values.Length);
        var floats = new ReadOnlySpan<float>((float*)f32.K(1, 2) + 3L * values.Length, values.Length);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(BitConverter.HalfToUInt16Bits((Half)values[i]), BitConverter.HalfToUInt16Bits(halves[i]));
            Assert.Equal(values[i], floats[i]);
        }
        Assert.Equal(2 * f16.TotalBytes, f32.TotalBytes);
    }

    [Fact]
    public void OnlyF16AndF32CachesExist()
    {
        var e = Assert.Throws<ArgumentException>(() => new KvCache(1, 1, 4, 8, 8, GgmlType.Q8_0));
        Assert.Contains("f16 or f32", e.Message);
    }
}
