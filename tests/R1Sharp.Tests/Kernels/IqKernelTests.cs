// The IQ, ternary and MXFP4 kernels at every SIMD level held to ggml's generic vec_dot (our scalar references) over
// awkward row lengths, on rows our quantizer wrote and on random block bytes (every scale and grid index a block can
// hold, f16 scales kept finite): Dot, Dot2 and DotTile.
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class IqKernelTests
{
    private static readonly GgmlType[] s_types =
    [
        GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M,
        GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4,
    ];

    private static readonly int[] s_lengths256 = [0, 256, 512, 3 * 256, 7 * 256, 17 * 256];
    private static readonly int[] s_lengths32 = [0, 32, 64, 96, 7 * 32, 8 * 32, 9 * 32, 17 * 32, 33 * 32, 44 * 32, 4096 + 32];

    /// <summary>
    /// SIMD dots vs ggml's generic dot: the integer sums per group are exact; the float accumulation order (vector lanes,
    /// and the IQ1 shift folded into the integers) differs, by a few ulps of Σ|w·x|.
    /// </summary>
    private const double RelTol = 1e-5;

    public static TheoryData<int, GgmlType> LevelsAndTypes()
    {
        var data = new TheoryData<int, GgmlType>();
        foreach (var l in Simd.Supported)
            foreach (var t in s_types) data.Add((int)l, t);
        return data;
    }

    private sealed class Buf(long bytes) : IDisposable
    {
        public byte* Ptr { get; } = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1) + 64, 64);
        public long Bytes { get; } = bytes;
        public Span<byte> Span => new(Ptr, (int)Bytes);
        public void Dispose() => NativeMemory.AlignedFree(Ptr);
    }

    /// <summary>Row r of a test: quantized Gaussian-like values (even r) or random bytes with finite scales (odd r).</summary>
    private static void WeightRow(GgmlType type, int n, int seed, Span<byte> row)
    {
        var f = QuantFormats.Get(type);
        if (seed % 2 == 0)
        {
            float[] x = KernelTestData.Activations(n, seed);
            f.Quantize(x, row, f.RequiresImportance ? Enumerable.Repeat(1f, n).ToArray() : default);
            return;
        }
        new Random(seed).NextBytes(row);
        for (int b = 0; b < row.Length; b += f.BlockBytes) FiniteScales(type, row.Slice(b, f.BlockBytes));
    }

    private static void FiniteScales(GgmlType type, Span<byte> b)
    {
        switch (type)
        {
            case GgmlType.IQ1_M: b[53] &= 0xBF; b[55] &= 0x3F; break;
            case GgmlType.MXFP4: b[0] = (byte)(120 + b[0] % 16); break;
            case GgmlType.TQ1_0: b[53] &= 0x3B; break;
            case GgmlType.TQ2_0: b[65] &= 0x3B; break;
            default: b[1] &= 0x3B; break;
        }
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void DotDot2AndDotTileMatchGgmlVecDot(int level, GgmlType type)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        var format = QuantFormats.Get(type);
        Assert.Equal(format.VecDotType, k.VecDotType);
        int tile = k.TileTokens;
        foreach (int n in GgmlTypeInfo.BlockSize(type) == 256 ? s_lengths256 : s_lengths32)
        {
            for (int variant = 0; variant < 2; variant++)
            {
                long rowBytes = GgmlTypeInfo.RowBytes(type, n);
                using var w = new Buf(rowBytes * 3);
                for (int r = 0; r < 3; r++) WeightRow(type, n, 2 * (n + r) + variant, new Span<byte>(w.Ptr + r * rowBytes, (int)rowBytes));
                var wd = new float[3][];
                for (int r = 0; r < 3; r++)
                {
                    wd[r] = new float[n];
                    format.Dequantize(new ReadOnlySpan<byte>(w.Ptr + r * rowBytes, (int)rowBytes), wd[r]);
                }

                long stride = k.ActivationRowBytes(n);
                using var act = new Buf(stride * tile);
                for (int t = 0; t < tile; t++)
                {
                    float[] x = KernelTestData.Activations(n, n + 17 + t);
                    fixed (float* px = x) k.QuantizeActivations(px, act.Ptr + t * stride, n);
                }
                var y = new float[tile * 3];
                fixed (float* py = y) k.DotTile(w.Ptr, act.Ptr, stride, n, py, 3);
                var pair = new float[5];
                if (k.Dot2 != null) fixed (float* pp = pair) k.Dot2(w.Ptr, 2 * rowBytes, act.Ptr, n, pp, 3);
                for (int t = 0; t < tile; t++)
                {
                    var xq = GgmlActivations(k, act.Ptr + t * stride, n);
                    var xd = new float[n];
                    QuantFormats.Get(format.VecDotType).Dequantize(xq, xd);
                    string what = $"{(SimdLevel)level} {type} n {n} variant {variant} t {t}";
                    for (int r = 0; r < (t == 0 ? 3 : 1); r++)
                    {
                        var wr = new ReadOnlySpan<byte>(w.Ptr + r * rowBytes, (int)rowBytes);
                        float expected = format.VecDotReference!(n, wr, xq);
                        double scale = 0;
                        for (int i = 0; i < n; i++) scale += Math.Abs((double)wd[r][i] * xd[i]);
                        float dot = k.Dot(w.Ptr + r * rowBytes, act.Ptr + t * stride, n);
                        if ((SimdLevel)level == SimdLevel.Scalar) Assert.Equal(expected, dot);
                        KernelTestData.Close(expected, dot, scale, RelTol, $"{what} row {r} Dot");
                        if (r == 0) KernelTestData.Close(expected, y[t * 3], scale, RelTol, what + " DotTile");
                        if (t == 0 && r != 1 && k.Dot2 != null) Assert.Equal(dot, pair[r == 0 ? 0 : 3]);
                    }
                }
                if (k.Dot2 != null) Assert.Equal(0f, pair[1] + pair[2] + pair[4]);
            }
        }
    }

    /// <summary>An activation row in ggml's block layout of the vec_dot_type (the SIMD Q8_K dots keep another one).</summary>
    private static byte[] GgmlActivations(in TypeKernels k, byte* act, int n)
    {
        var bytes = new byte[GgmlTypeInfo.RowBytes(k.VecDotType, n)];
        if (Iq4XsKernels.IsUsedBy(k))
        {
            fixed (byte* pb = bytes) Iq4XsKernels.ToGgml(act, pb, n);
        }
        else if (Q8_KAligned.IsUsedBy(k))
        {
            fixed (byte* pb = bytes) Q8_KAligned.ToGgml(act, pb, n);
        }
        else new ReadOnlySpan<byte>(act, bytes.Length).CopyTo(bytes); // Q8_0: ggml's blocks first (any per-block sums follow)
        return bytes;
    }
}
