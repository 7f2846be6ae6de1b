// The QuantFormats table and the row-length contract: block geometry as in ggml-common.h, whole blocks only,
// byte counts that match, ArgumentException otherwise.
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;
using static R1Sharp.Tests.Quants.QuantTestData;

namespace R1Sharp.Tests.Quants;

public sealed class QuantFormatTableTests
{
    [Theory]
    // sizeof(block_*) in ggml-common.h
    [InlineData(GgmlType.Q4_0, 32, 18, GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_1, 32, 20, GgmlType.Q8_1)]
    [InlineData(GgmlType.Q5_0, 32, 22, GgmlType.Q8_0)]
    [InlineData(GgmlType.Q5_1, 32, 24, GgmlType.Q8_1)]
    [InlineData(GgmlType.Q8_0, 32, 34, GgmlType.Q8_0)]
    [InlineData(GgmlType.Q8_1, 32, 36, GgmlType.Q8_1)]
    [InlineData(GgmlType.Q2_K, 256, 84, GgmlType.Q8_K)]
    [InlineData(GgmlType.Q3_K, 256, 110, GgmlType.Q8_K)]
    [InlineData(GgmlType.Q4_K, 256, 144, GgmlType.Q8_K)]
    [InlineData(GgmlType.Q5_K, 256, 176, GgmlType.Q8_K)]
    [InlineData(GgmlType.Q6_K, 256, 210, GgmlType.Q8_K)]
    [InlineData(GgmlType.Q8_K, 256, 292, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ2_XXS, 256, 66, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ2_XS, 256, 74, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ2_S, 256, 82, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ3_XXS, 256, 98, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ3_S, 256, 110, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ1_S, 256, 50, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ1_M, 256, 56, GgmlType.Q8_K)]
    [InlineData(GgmlType.IQ4_NL, 32, 18, GgmlType.Q8_0)]
    [InlineData(GgmlType.IQ4_XS, 256, 136, GgmlType.Q8_K)]
    [InlineData(GgmlType.TQ1_0, 256, 54, GgmlType.Q8_K)]
    [InlineData(GgmlType.TQ2_0, 256, 66, GgmlType.Q8_K)]
    [InlineData(GgmlType.MXFP4, 32, 17, GgmlType.Q8_0)]
    public void TableMatchesGgmlBlockGeometry(GgmlType type, int blockSize, int blockBytes, GgmlType vecDotType)
    {
        var f = QuantFormats.Get(type);
        Assert.Equal(type, f.Type);
        Assert.Equal(blockSize, f.BlockSize);
        Assert.Equal(blockBytes, f.BlockBytes);
        Assert.Equal(blockSize, GgmlTypeInfo.BlockSize(type));
        Assert.Equal(blockBytes, GgmlTypeInfo.BlockBytes(type));
        Assert.Equal(vecDotType, f.VecDotType);
        bool activationOnly = type is GgmlType.Q8_1 or GgmlType.Q8_K;
        Assert.Equal(activationOnly, f.VecDotReference is null);
    }

    [Fact]
    public void TableCoversExactlyTheQuantizedTypes()
    {
        Assert.Equal(AllTypes.OrderBy(t => t), QuantFormats.All.Select(f => f.Type).OrderBy(t => t));
        foreach (var t in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16 })
        {
            Assert.False(QuantFormats.IsSupported(t));
            Assert.Throws<ArgumentException>(() => QuantFormats.Get(t));
        }
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void WholeBlockRowsOfAnyCountWork(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        foreach (int blocks in new[] { 0, 1, 3 })
        {
            int n = blocks * f.BlockSize;
            var x = Gaussian(n, blocks);
            var q = new byte[blocks * f.BlockBytes];
            QuantizeInto(f, x, q);
            var y = new float[n];
            f.Dequantize(q, y);
        }
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void RowsThatAreNotWholeBlocksThrow(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        int bs = f.BlockSize, bb = f.BlockBytes;
        foreach (int n in new[] { 1, bs - 1, bs + 1, 2 * bs + 7 })
        {
            Assert.Throws<ArgumentException>(() => QuantizeInto(f, new float[n], new byte[(n / bs + 1) * bb]));
            Assert.Throws<ArgumentException>(() => f.Dequantize(new byte[(n / bs + 1) * bb], new float[n]));
        }
    }

    [Theory]
    [MemberData(nameof(All), MemberType = typeof(QuantTestData))]
    public void ByteCountsThatDoNotMatchThrow(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        int n = 2 * f.BlockSize, bytes = 2 * f.BlockBytes;
        foreach (int wrong in new[] { bytes - 1, bytes + 1, f.BlockBytes, 3 * f.BlockBytes })
        {
            Assert.Throws<ArgumentException>(() => QuantizeInto(f, new float[n], new byte[wrong]));
            Assert.Throws<ArgumentException>(() => f.Dequantize(new byte[wrong], new float[n]));
        }
    }

    [Theory]
    [MemberData(nameof(Weights), MemberType = typeof(QuantTestData))]
    public void VecDotWithWrongLengthsThrows(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var a = QuantFormats.Get(f.VecDotType);
        var dot = f.VecDotReference!;
        int n = 2 * f.BlockSize;
        var w = new byte[2 * f.BlockBytes];
        var x = new byte[2 * a.BlockBytes];
        Assert.Equal(0f, dot(n, w, x)); // all-zero blocks: the right lengths work
        Assert.Throws<ArgumentException>(() => dot(n + 1, w, x));
        Assert.Throws<ArgumentException>(() => dot(n - f.BlockSize / 2, w, x));
        Assert.Throws<ArgumentException>(() => dot(-f.BlockSize, w, x));
        Assert.Throws<ArgumentException>(() => dot(n, w.AsSpan(1), x));
        Assert.Throws<ArgumentException>(() => dot(n, w, x.AsSpan(0, x.Length - 1)));
        Assert.Throws<ArgumentException>(() => dot(n, w, new byte[3 * a.BlockBytes]));
    }
}
