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
        Assert.Equal(GgmlType.F32, f32.KType);
        f16.StoreV(values, f16.V(1, 2), 3L * values.Length);
        f32.StoreK(values, f32.K(1, 2), 3L * values.Length);
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
    public void F32F16AndQ8_0CachesExist_Q8_0InWholeBlocks()
    {
        var e = Assert.Throws<ArgumentException>(() => new KvCache(1, 1, 4, 32, 32, GgmlType.Q4_0));
        Assert.Contains("f32, f16 or q8_0", e.Message);
        e = Assert.Throws<ArgumentException>(() => new KvCache(1, 1, 4, 32, 48, GgmlType.F16, GgmlType.Q8_0));
        Assert.Contains("whole blocks of 32", e.Message);
        using var mixed = new KvCache(2, 3, 4, 64, 96, GgmlType.Q8_0, GgmlType.F16);
        Assert.Equal((GgmlType.Q8_0, GgmlType.F16), (mixed.KType, mixed.VType));
        Assert.Equal(2L * 3 * 4 * (64 / 32 * 34 + 96 * 2), mixed.TotalBytes);
    }

    [Fact]
    public void Q8_0StoreQuantizesWholeBlocksAsGgmlCpu()
    {
        var rng = new Random(9);
        float[] values = Enumerable.Range(0, 96).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        values[5] = 0.5f * 127 / 4; // a tie, rounded to even
        using var cache = new KvCache(2, 2, 8, 128, 128, GgmlType.Q8_0);
        cache.StoreK(values, cache.K(1, 1), 5L * 128 + 32);
        var expected = new byte[3 * 34];
        fixed (float* x = values) fixed (byte* y = expected) R1Sharp.Kernels.Q8_0Kernels.QuantizeRowQ8_0(x, y, 96);
        Assert.Equal(expected, new ReadOnlySpan<byte>(cache.K(1, 1) + (5 * 128 + 32) / 32 * 34, expected.Length).ToArray());
        Assert.Throws<InvalidOperationException>(() => cache.StoreV(values.AsSpan(0, 40), cache.V(0, 0), 0));
        Assert.Throws<InvalidOperationException>(() => cache.StoreV(values.AsSpan(0, 32), cache.V(0, 0), 16));
    }
}
