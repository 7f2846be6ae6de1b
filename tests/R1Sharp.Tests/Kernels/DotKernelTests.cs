// Every SIMD dot kernel and activation converter held to the scalar reference (named like ggml's) over awkward lengths.
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class DotKernelTests
{
    /// <summary>64-byte aligned native buffer, as rows of a mapped file are.</summary>
    private sealed class Buf : IDisposable
    {
        public Buf(long bytes) { Ptr = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1) + 64, 64); Bytes = bytes; }
        public byte* Ptr { get; }
        public long Bytes { get; }
        public void Dispose() => NativeMemory.AlignedFree(Ptr);
    }

    private static Buf Quantize(GgmlType type, float[] x)
    {
        var b = new Buf(GgmlTypeInfo.RowBytes(type, x.Length));
        Quantization.QuantizeRow(type, x, new Span<byte>(b.Ptr, (int)b.Bytes), KernelTable.Create(SimdLevel.Scalar));
        return b;
    }

    /// <summary>Activations in the table's layout for <paramref name="k"/>, one row of n values per token.</summary>
    private static (Buf Buf, long Stride) Activations(in TypeKernels k, float[][] x)
    {
        int n = x[0].Length;
        long stride = k.ActivationRowBytes(n);
        var b = new Buf(stride * x.Length);
        for (int t = 0; t < x.Length; t++)
        {
            fixed (float* px = x[t])
            {
                if (k.QuantizeActivations == null) Buffer.MemoryCopy(px, b.Ptr + t * stride, stride, n * 4L);
                else k.QuantizeActivations(px, b.Ptr + t * stride, n);
            }
        }
        return (b, stride);
    }

    /// <summary>ggml's reference dot of a weight row with activations converted to vec_dot_type in ggml's layout.</summary>
    private static float Reference(GgmlType type, Buf w, float[] x)
    {
        int n = x.Length;
        switch (type)
        {
            case GgmlType.F32:
                fixed (float* px = x) return F32Kernels.VecDotF32Reference(n, (float*)w.Ptr, px);
            case GgmlType.F16:
            {
                var h = new ushort[n];
                for (int i = 0; i < n; i++) h[i] = HalfConvert.F32ToF16(x[i]);
                fixed (ushort* ph = h) return F16Kernels.VecDotF16Reference(n, (ushort*)w.Ptr, ph);
            }
            case GgmlType.BF16:
            {
                var h = new ushort[n];
                for (int i = 0; i < n; i++) h[i] = HalfConvert.F32ToBF16(x[i]);
                fixed (ushort* ph = h) return BF16Kernels.VecDotBF16Reference(n, (ushort*)w.Ptr, ph);
            }
            case GgmlType.Q8_0:
            {
                var q = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, n)];
                fixed (float* px = x)
                fixed (byte* pq = q)
                {
                    Q8_0Kernels.QuantizeRowQ8_0(px, pq, n);
                    return Q8_0Kernels.VecDotQ8_0Q8_0Reference(n, w.Ptr, pq);
                }
            }
            default: throw new NotSupportedException();
        }
    }

    private static double AbsDot(float[] w, float[] x)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += Math.Abs((double)w[i] * x[i]);
        return s;
    }

    public static TheoryData<int, GgmlType> LevelsAndTypes()
    {
        var data = new TheoryData<int, GgmlType>();
        foreach (var l in Simd.Supported)
        {
            foreach (var t in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0 }) data.Add((int)l, t);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void DotAndDotTile_MatchReference(int level, GgmlType type)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        double rel = type == GgmlType.Q8_0 ? KernelTestData.Q8DotRelTol : KernelTestData.FloatDotRelTol;
        int[] lengths = type == GgmlType.Q8_0 ? KernelTestData.BlockLengths : KernelTestData.AwkwardLengths;
        int tile = k.TileTokens;
        Assert.InRange(tile, 1, 16);
        foreach (int n in lengths)
        {
            float[] wf = KernelTestData.Random(n, 7 * n + 1);
            float[][] x = Enumerable.Range(0, tile).Select(t => KernelTestData.Activations(n, n + 11 + t)).ToArray();
            using Buf w = Quantize(type, wf);
            var (act, stride) = Activations(k, x);
            using (act)
            {
                var y = new float[tile * 3];
                fixed (float* py = y) k.DotTile(w.Ptr, act.Ptr, stride, n, py, 3);
                for (int t = 0; t < tile; t++)
                {
                    float expected = Reference(type, w, x[t]);
                    double scale = AbsDot(wf, x[t]);
                    KernelTestData.Close(expected, k.Dot(w.Ptr, act.Ptr + t * stride, n), scale, rel, $"{(SimdLevel)level} {type} Dot n {n} t {t}");
                    KernelTestData.Close(expected, y[t * 3], scale, rel, $"{(SimdLevel)level} {type} DotTile n {n} t {t}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(LevelsAndTypes))]
    public void DotPacked_MatchesReference(int level, GgmlType type)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[type];
        if (k.DotPacked == null) return; // this type has no packed path at this level
        const int R = TypeKernels.PackedRows, T = TypeKernels.PackedTokens, G = TypeKernels.PackGroupTokens;
        double rel = type == GgmlType.Q8_0 ? KernelTestData.Q8DotRelTol : KernelTestData.FloatDotRelTol;
        foreach (int n in type == GgmlType.Q8_0 ? KernelTestData.BlockLengths : KernelTestData.AwkwardLengths)
        {
            float[][] wf = Enumerable.Range(0, R).Select(r => KernelTestData.Random(n, 7 * n + 1 + r)).ToArray();
            float[][] x = Enumerable.Range(0, T).Select(t => KernelTestData.Activations(n, n + 11 + t)).ToArray();
            long rowBytes = GgmlTypeInfo.RowBytes(type, n);
            var w = wf.Select(row => Quantize(type, row)).ToArray();
            using var wAll = new Buf(rowBytes * R);
            for (int r = 0; r < R; r++) Buffer.MemoryCopy(w[r].Ptr, wAll.Ptr + r * rowBytes, rowBytes, rowBytes);
            var (act, stride) = Activations(k, x);
            long groupBytes = k.PackedGroupBytes(n);
            using var packed = new Buf(groupBytes * (T / G));
            using (act)
            {
                for (int g = 0; g < T / G; g++) k.PackActivations(act.Ptr + g * G * stride, stride, n, packed.Ptr + g * groupBytes);
                KernelTestData.ForEachPackedResult(k, wAll.Ptr, rowBytes, packed.Ptr, groupBytes, n, (groups, t, r, value) =>
                    KernelTestData.Close(Reference(type, w[r], x[t]), value, AbsDot(wf[r], x[t]), rel,
                        $"{(SimdLevel)level} {type} DotPacked n {n} groups {groups} t {t} r {r}"));
            }
            foreach (var b in w) b.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestData.Levels), MemberType = typeof(KernelTestData))]
    public void F16Dot_PropagatesInfAndNaNWeights(int level)
    {
        // the SIMD F16 dots take a faster conversion when a row has no Inf/NaN; this holds the other branch
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[GgmlType.F16];
        foreach (int n in new[] { 17, 64, 100 })
        {
            foreach (float special in new[] { float.PositiveInfinity, float.NegativeInfinity, float.NaN })
            {
                float[] wf = KernelTestData.Random(n, n);
                wf[n / 2] = special;
                float[] x = KernelTestData.Random(n, n + 1);
                x[n / 2] = 0.5f;
                using Buf w = Quantize(GgmlType.F16, wf);
                var (act, stride) = Activations(k, Enumerable.Repeat(x, k.TileTokens).ToArray());
                using (act)
                {
                    float expected = Reference(GgmlType.F16, w, x);
                    var y = new float[k.TileTokens];
                    fixed (float* py = y) k.DotTile(w.Ptr, act.Ptr, stride, n, py, 1);
                    Assert.Equal(expected, k.Dot(w.Ptr, act.Ptr, n));
                    Assert.Equal(expected, y[^1]);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestData.Levels), MemberType = typeof(KernelTestData))]
    public void F16Activations_AreRoundedToHalfExactly(int level)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[GgmlType.F16];
        Assert.Equal(GgmlType.F16, k.VecDotType);
        foreach (int n in KernelTestData.AwkwardLengths)
        {
            float[] x = KernelTestData.Activations(n, n);
            if (n > 8) { x[1] = 70000f; x[2] = 1e-6f; x[3] = 1.00048828125f; /* tie: 1 + 2^-11 -> 1 */ x[4] = -0f; }
            var (act, _) = Activations(k, [x]);
            using (act)
            {
                for (int i = 0; i < n; i++) Assert.Equal((float)(Half)x[i], ((float*)act.Ptr)[i]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestData.Levels), MemberType = typeof(KernelTestData))]
    public void BF16Activations_AreRoundedToBFloat16Exactly(int level)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[GgmlType.BF16];
        Assert.Equal(GgmlType.BF16, k.VecDotType);
        foreach (int n in KernelTestData.AwkwardLengths)
        {
            float[] x = KernelTestData.Activations(n, n);
            if (n > 8) { x[1] = 1.00390625f; x[2] = 1.01171875f; x[3] = float.NaN; x[4] = 3.3895314e38f; }
            var (act, _) = Activations(k, [x]);
            using (act)
            {
                for (int i = 0; i < n; i++)
                {
                    float expected = HalfConvert.BF16ToF32(HalfConvert.F32ToBF16(x[i]));
                    Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(((float*)act.Ptr)[i]));
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(KernelTestData.Levels), MemberType = typeof(KernelTestData))]
    public void Q8_0Activations_MatchGgmlQuantizeRowExactly(int level)
    {
        ref readonly TypeKernels k = ref KernelTable.Create((SimdLevel)level)[GgmlType.Q8_0];
        Assert.Equal(GgmlType.Q8_0, k.VecDotType);
        foreach (int n in KernelTestData.BlockLengths)
        {
            float[] x = KernelTestData.Activations(n, n);
            for (int i = 0; i < 32; i++) x[i] = (i - 16) * 0.5f; // amax 8: x * 127/8 hits halves, which round to even
            Array.Clear(x, 32, Math.Min(32, n - 32));           // an all-zero block
            var std = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, n)];
            fixed (float* px = x)
            fixed (byte* ps = std)
            {
                Q8_0Kernels.QuantizeRowQ8_0(px, ps, n);
            }
            var (act, _) = Activations(k, [x]);
            using (act)
            {
                var values = new float[n];
                fixed (float* pv = values) k.ActivationsToFloat(act.Ptr, pv, n);
                for (int b = 0; b < n / 32; b++)
                {
                    float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(std, b * 34));
                    for (int j = 0; j < 32; j++) Assert.Equal(d * (sbyte)std[b * 34 + 2 + j], values[b * 32 + j]);
                }
            }
        }
    }

    [Fact]
    public void Q8_0ActivationRounding_IsNearestEvenWithScale127OverAmax()
    {
        // amax 127: id = 1, so 2.5 -> 2 and 3.5 -> 4 (ggml-cpu's x86 quantize_row_q8_0), unlike the reference's roundf
        var x = new float[32];
        x[0] = 127f; x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f;
        var q = new byte[34];
        fixed (float* px = x)
        fixed (byte* pq = q)
        {
            Q8_0Kernels.QuantizeRowQ8_0(px, pq, 32);
        }
        Assert.Equal(127, (sbyte)q[2]);
        Assert.Equal(2, (sbyte)q[3]);
        Assert.Equal(4, (sbyte)q[4]);
        Assert.Equal(-2, (sbyte)q[5]);
    }
}
