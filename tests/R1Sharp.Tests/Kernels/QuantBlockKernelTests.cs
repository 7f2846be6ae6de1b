// The quantized block types' kernels (Q4_0 … Q6_K) at every SIMD level held to ggml's generic vec_dot over
// activations quantized as ggml-cpu does on x86, and the activation quantizers held to ggml's.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using R1Sharp.Kernels;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class QuantBlockKernelTests
{
    private static readonly GgmlType[] s_types =
        [GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    /// <summary>Row lengths for 32-value blocks: 0, 1, 7, 8, 9 … blocks, around the SIMD loops' groups (44: DeepSeek-V2-Lite's expert rows).</summary>
    private static readonly int[] s_lengths32 = [0, 32, 64, 96, 7 * 32, 8 * 32, 9 * 32, 17 * 32, 33 * 32, 44 * 32, 4096 + 32];

    /// <summary>Row lengths for 256-value super-blocks.</summary>
    private static readonly int[] s_lengths256 = [0, 256, 512, 3 * 256, 7 * 256, 17 * 256];

    /// <summary>
    /// SIMD dots vs ggml's generic dot: the integer sums per sub-block are exact; only the float accumulation order
    /// differs (ggml's 8 float lanes vs our vector lanes), so the difference is a few ulps of Σ|w·x|.
    /// </summary>
    private const double QuantDotRelTol = 1e-5;

    private sealed class Buf : IDisposable
    {
        public Buf(long bytes) { Ptr = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1) + 64, 64); Bytes = bytes; }
        public byte* Ptr { get; }
        public long Bytes { get; }
        public Span<byte> Span => new(Ptr, (int)Bytes);
        public void Dispose() => NativeMemory.AlignedFree(Ptr);
    }

    public static TheoryData<int, GgmlType> LevelsAndTypes()
    {
        var data = new TheoryData<int, GgmlType>();
        foreach (var l in Simd.Supported)
            foreach (var t in s_types) data.Add((int)l, t);
        return data;
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void DotAndDotTile_MatchGgmlVecDot(int level, GgmlType type)
    {
        var scalar = KernelTable.Create(SimdLevel.Scalar)[type];
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        var format = QuantFormats.Get(type);
        Assert.Equal(format.VecDotType, k.VecDotType);
        int tile = k.TileTokens;
        foreach (int n in GgmlTypeInfo.BlockSize(type) == 256 ? s_lengths256 : s_lengths32)
        {
            // weights with a few outliers, so some sub-blocks use small scales and some large
            float[] wf = KernelTestData.Activations(n, 3 * n + 5);
            using var w = new Buf(GgmlTypeInfo.RowBytes(type, n));
            Quantization.QuantizeRow(type, wf, w.Span);
            var wd = new float[n];
            Quantization.DequantizeRow(type, w.Span, wd);

            long stride = k.ActivationRowBytes(n);
            Assert.Equal(0, stride % 64);
            using var act = new Buf(stride * tile);
            var x = new float[tile][];
            for (int t = 0; t < tile; t++)
            {
                x[t] = KernelTestData.Activations(n, n + 17 + t);
                fixed (float* px = x[t]) k.QuantizeActivations(px, act.Ptr + t * stride, n);
            }
            var y = new float[tile * 3];
            fixed (float* py = y) k.DotTile(w.Ptr, act.Ptr, stride, n, py, 3);
            for (int t = 0; t < tile; t++)
            {
                var xq = GgmlActivations(k, act.Ptr + t * stride, n);
                float expected = format.VecDotReference!(n, w.Span, xq);
                var xd = new float[n];
                QuantFormats.Get(format.VecDotType).Dequantize(xq, xd);
                double scale = 0;
                for (int i = 0; i < n; i++) scale += Math.Abs((double)wd[i] * xd[i]);
                string what = $"{(SimdLevel)level} {type} n {n} t {t}";
                float dot = k.Dot(w.Ptr, act.Ptr + t * stride, n);
                if ((SimdLevel)level == SimdLevel.Scalar)
                {
                    Assert.Equal(expected, dot);
                    Assert.Equal(expected, y[t * 3]);
                }
                KernelTestData.Close(expected, dot, scale, QuantDotRelTol, what + " Dot");
                KernelTestData.Close(expected, y[t * 3], scale, QuantDotRelTol, what + " DotTile");
                // and the dot is the dot of what the two rows stand for (not for Q4_1/Q5_1: Q8_1 carries d·Σq in F16
                // for the min term, so there ggml's own dot differs from it by a rounding of that sum)
                if (k.VecDotType == GgmlType.Q8_1) continue;
                double exact = 0;
                for (int i = 0; i < n; i++) exact += (double)wd[i] * xd[i];
                KernelTestData.Close(exact, dot, scale, 1e-4, what + " vs dequantized");
            }
        }
    }

    /// <summary>
    /// Where Q5_0 and Q4_0 read activations with sums (Q5_0 at 256 and 512 bits, 256-bit Q4_0; the 128-bit levels read the scalar layouts), the 4-token tile is the
    /// single-token dot's arithmetic: each token's result has the same bits in a prefill tile as in decode.
    /// </summary>
    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void LegacyDotTileWithSums_MatchesDotBitForBit(int level, GgmlType type)
    {
        var l = (SimdLevel)level;
        if (!(type == GgmlType.Q5_0 && l is SimdLevel.V256 or SimdLevel.V512 || type == GgmlType.Q4_0 && l == SimdLevel.V256)) return;
        ref readonly TypeKernels k = ref KernelTable.Create(l)[type];
        Assert.Equal(4, k.TileTokens);
        foreach (int n in s_lengths32)
        {
            float[] wf = KernelTestData.Activations(n, 7 * n + 1);
            if (n > 0) wf[n / 2] = 25f;
            using var w = new Buf(GgmlTypeInfo.RowBytes(type, n));
            Quantization.QuantizeRow(type, wf, w.Span);
            long stride = k.ActivationRowBytes(n);
            using var act = new Buf(stride * 4);
            for (int t = 0; t < 4; t++)
            {
                float[] x = KernelTestData.Activations(n, n + 41 + t);
                fixed (float* px = x) k.QuantizeActivations(px, act.Ptr + t * stride, n);
            }
            var y = new float[4 * 2];
            fixed (float* py = y) k.DotTile(w.Ptr, act.Ptr, stride, n, py, 2);
            for (int t = 0; t < 4; t++)
                Assert.True(k.Dot(w.Ptr, act.Ptr + t * stride, n) == y[t * 2], $"{l} {type} n {n} token {t}");
        }
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void Dot2_MatchesDotOfEachRow(int level, GgmlType type)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        if (k.Dot2 == null) return; // this type has no two-row decode dot at this level
        foreach (int n in GgmlTypeInfo.BlockSize(type) == 256 ? s_lengths256 : s_lengths32)
        {
            // three rows, so the pair is rows 0 and 2 (wStride two rows), as decode pairs rows far apart
            long rowBytes = GgmlTypeInfo.RowBytes(type, n);
            using var w = new Buf(rowBytes * 3);
            for (int r = 0; r < 3; r++)
            {
                float[] wf = KernelTestData.Activations(n, 5 * n + 3 + r);
                if (n > 0 && r == 2) wf[n / 3] = -30f; // an outlier in one block of the second row
                Quantization.QuantizeRow(type, wf, new Span<byte>(w.Ptr + r * rowBytes, (int)rowBytes));
            }
            using var act = new Buf(k.ActivationRowBytes(n));
            float[] x = KernelTestData.Activations(n, n + 29);
            fixed (float* px = x) k.QuantizeActivations(px, act.Ptr, n);
            var y = new float[5];
            fixed (float* py = y) k.Dot2(w.Ptr, 2 * rowBytes, act.Ptr, n, py, 3);
            Assert.Equal(k.Dot(w.Ptr, act.Ptr, n), y[0]);
            Assert.Equal(k.Dot(w.Ptr + 2 * rowBytes, act.Ptr, n), y[3]);
            Assert.Equal(0f, y[1] + y[2] + y[4]);
        }
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void DotPacked_MatchesGgmlVecDot(int level, GgmlType type)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        if (k.DotPacked == null) return; // this type has no packed path at this level
        var format = QuantFormats.Get(type);
        const int R = TypeKernels.PackedRows, T = TypeKernels.PackedTokens, G = TypeKernels.PackGroupTokens;
        foreach (int n in GgmlTypeInfo.BlockSize(type) == 256 ? s_lengths256 : s_lengths32)
        {
            long rowBytes = GgmlTypeInfo.RowBytes(type, n);
            using var w = new Buf(rowBytes * R);
            var wd = new float[R][];
            for (int r = 0; r < R; r++)
            {
                float[] wf = KernelTestData.Activations(n, 3 * n + 5 + r);
                if (n > 0 && r == 1) wf[n / 2] = 40f; // an outlier: large scales in one block, small in the others
                var row = new Span<byte>(w.Ptr + r * rowBytes, (int)rowBytes);
                Quantization.QuantizeRow(type, wf, row);
                wd[r] = new float[n];
                Quantization.DequantizeRow(type, row, wd[r]);
            }
            long stride = k.ActivationRowBytes(n), groupBytes = k.PackedGroupBytes(n);
            Assert.Equal(0, groupBytes % 64);
            using var act = new Buf(stride * T);
            using var packed = new Buf(groupBytes * (T / G));
            var x = new float[T][];
            for (int t = 0; t < T; t++)
            {
                x[t] = KernelTestData.Activations(n, n + 17 + t);
                if (n > 0 && t == 5) x[t][n - 1] = -30f;
                fixed (float* px = x[t]) k.QuantizeActivations(px, act.Ptr + t * stride, n);
            }
            for (int g = 0; g < T / G; g++) k.PackActivations(act.Ptr + g * G * stride, stride, n, packed.Ptr + g * groupBytes);
            var xd = new float[T][];
            var xq = new byte[T][];
            for (int t = 0; t < T; t++)
            {
                xq[t] = GgmlActivations(k, act.Ptr + t * stride, n);
                xd[t] = new float[n];
                QuantFormats.Get(format.VecDotType).Dequantize(xq[t], xd[t]);
            }
            KernelTestData.ForEachPackedResult(k, w.Ptr, rowBytes, packed.Ptr, groupBytes, n, (groups, t, r, value) =>
            {
                float expected = format.VecDotReference!(n, new ReadOnlySpan<byte>(w.Ptr + r * rowBytes, (int)rowBytes), xq[t]);
                double scale = 0;
                for (int i = 0; i < n; i++) scale += Math.Abs((double)wd[r][i] * xd[t][i]);
                KernelTestData.Close(expected, value, scale, QuantDotRelTol, $"{(SimdLevel)level} {type} DotPacked n {n} groups {groups} t {t} r {r}");
            });
        }
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void ActivationsAndRows_MatchGgml(int level, GgmlType type)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        int bs = GgmlTypeInfo.BlockSize(type);
        int n = 5 * Math.Max(bs, 256);
        float[] x = KernelTestData.Activations(n, 77);
        x[3] = 0.5f * 127f / 20f; // no tie in general, but exercise a block with an outlier at its edge
        for (int i = 256; i < 288; i++) x[i] = 0; // an all-zero block
        long bytes = GgmlTypeInfo.RowBytes(k.VecDotType, n);
        using var act = new Buf(k.ActivationRowBytes(n));
        fixed (float* px = x) k.QuantizeActivations(px, act.Ptr, n);
        var expected = new byte[bytes];
        switch (k.VecDotType)
        {
            case GgmlType.Q8_K: QuantReference.QuantizeRowQ8_KReference(x, expected); break;
            case GgmlType.Q8_0: fixed (float* px = x) fixed (byte* pe = expected) Q8_0Kernels.QuantizeRowQ8_0(px, pe, n); break;
            default: fixed (float* px = x) fixed (byte* pe = expected) QuantBlockKernels.QuantizeRowQ8_1(px, pe, n); break;
        }
        Assert.Equal(expected, GgmlActivations(k, act.Ptr, n));
        var xf = new float[n];
        var xe = new float[n];
        fixed (float* pf = xf) k.ActivationsToFloat(act.Ptr, pf, n);
        QuantFormats.Get(k.VecDotType).Dequantize(expected, xe);
        Assert.Equal(xe, xf);

        // weights: the table quantizes and dequantizes rows exactly as the reference does
        var wq = new byte[GgmlTypeInfo.RowBytes(type, n)];
        var wr = new byte[wq.Length];
        Quantization.QuantizeRow(type, x, wq, KernelTable.Create((SimdLevel)level));
        QuantFormats.Get(type).QuantizeReference(x, wr);
        Assert.Equal(wr, wq);
        var d1 = new float[n];
        var d2 = new float[n];
        Quantization.DequantizeRow(type, wq, d1, KernelTable.Create((SimdLevel)level));
        QuantFormats.Get(type).Dequantize(wq, d2);
        Assert.Equal(d2, d1);
    }

    /// <summary>An activation row in ggml's block layout of the vec_dot_type (the SIMD K-quant dots keep another one).</summary>
    private static byte[] GgmlActivations(in TypeKernels k, byte* act, int n)
    {
        var bytes = new byte[GgmlTypeInfo.RowBytes(k.VecDotType, n)];
        if (Q8_KAligned.IsUsedBy(k))
        {
            fixed (byte* pb = bytes) Q8_KAligned.ToGgml(act, pb, n);
        }
        else new ReadOnlySpan<byte>(act, bytes.Length).CopyTo(bytes);
        return bytes;
    }

    [Fact]
    public void Q4_KScaleUnpack_MatchesGgml()
    {
        var rnd = new Random(11);
        byte* s = stackalloc byte[12];
        for (int rep = 0; rep < 2000; rep++)
        {
            rnd.NextBytes(new Span<byte>(s, 12));
            if (rep == 0) new Span<byte>(s, 12).Fill(0xFF);
            Q4KKernels.ScalesMins(s, out ulong sc, out ulong mn);
            for (int j = 0; j < 8; j++)
            {
                QuantMath.GetScaleMinK4(j, new ReadOnlySpan<byte>(s, 12), out byte d, out byte m);
                Assert.Equal(d, (byte)(sc >> (8 * j)));
                Assert.Equal(m, (byte)(mn >> (8 * j)));
            }
        }
    }

    [Fact]
    public void Q8_KAlignedQuantize_MatchesReferenceBitForBit()
    {
        if (!Simd.IsSupported(SimdLevel.V256)) return;
        const int n = 9 * 256;
        var rnd = new Random(5);
        for (int rep = 0; rep < 20; rep++)
        {
            float[] x = KernelTestData.Activations(n, 100 + rep);
            for (int i = 256; i < 512; i++) x[i] = 0; // an all-zero block
            x[600] = 3f; x[700] = -3f; // tie in |x|: the first one sets the sign
            x[800] = -4f; x[801] = 4f;
            x[1100] = 1e-30f; // a tiny block
            for (int i = 1024; i < 1280; i++) x[i] = i == 1100 ? x[i] : 0;
            for (int i = 1280; i < 1536; i++) x[i] = (float)Math.Round(rnd.NextDouble() * 254 - 127) * 0.5f; // ties at .5 after scaling
            for (int i = 1536; i < 1792; i++) x[i] = (i % 7 - 3) * 1e4f;
            var got = new byte[Q8_KAligned.RowBytes(n)];
            var want = new byte[got.Length];
            fixed (float* px = x) fixed (byte* pg = got, pw = want)
            {
                Q8_KAligned.Quantize(px, pg, n);
                Q8_KAligned.QuantizeReference(px, pw, n);
            }
            Assert.Equal(want, got);
        }
    }

    [Fact]
    public void Q8_1Activations_RoundHalvesToEvenAsGgmlX86Does()
    {
        // amax 127 makes id 1, so x·id is exact: 2.5 → 2 and -3.5 → -4 (ggml's x86 _mm256_round_ps), not 3 / -4 (roundf)
        var x = new float[32];
        x[0] = 127f;
        x[1] = 2.5f;
        x[2] = -3.5f;
        x[3] = 0.5f;
        var y = new byte[36];
        fixed (float* px = x) fixed (byte* py = y) QuantBlockKernels.QuantizeRowQ8_1(px, py, 32);
        Assert.Equal(127, (sbyte)y[4]);
        Assert.Equal(2, (sbyte)y[5]);
        Assert.Equal(-4, (sbyte)y[6]);
        Assert.Equal(0, (sbyte)y[7]);
        Assert.Equal(1f, (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(y, 0)));
        Assert.Equal(125f, (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(y, 2))); // d·Σq = 127 + 2 - 4
    }
}
