// MatMul against a naive double-precision product: once with the activation rounding of ggml's vec_dot_type applied
// (tight: only summation order differs), once with the raw activations (a tolerance that reflects the type).
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class MatMulTests
{
    /// <summary>Same rounding semantics, double reference: summation order only.</summary>
    private const double SameSemanticsRelTol = 1e-5;

    /// <summary>Against unrounded activations: the error of rounding activations to the vec_dot_type.</summary>
    private static double RawRelTol(GgmlType t) => t switch
    {
        GgmlType.F32 => 1e-5,
        GgmlType.F16 => 2e-3,
        GgmlType.BF16 => 1e-2,
        GgmlType.Q8_0 => 2e-2,
        GgmlType.Q4_K or GgmlType.Q6_K => 2e-2,
        _ => throw new NotSupportedException(),
    };

    public static TheoryData<int, GgmlType, int, int> Cases()
    {
        var data = new TheoryData<int, GgmlType, int, int>();
        foreach (var l in Simd.Supported)
        {
            foreach (var t in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0 })
            {
                foreach (int threads in new[] { 1, 2 }) data.Add((int)l, t, threads, t == GgmlType.Q8_0 ? 160 : 67);
            }
        }
        data.Add((int)Simd.Best, GgmlType.Q8_0, 2, 96);
        data.Add((int)Simd.Best, GgmlType.Q8_0, 2, 544);
        data.Add((int)Simd.Best, GgmlType.F16, 2, 1);
        // the K-quants' packed prefill path (Q8_K activations) and its partial groups
        data.Add((int)Simd.Best, GgmlType.Q4_K, 2, 512);
        data.Add((int)Simd.Best, GgmlType.Q4_K, 1, 256);
        data.Add((int)Simd.Best, GgmlType.Q6_K, 2, 768);
        return data;
    }

    /// <summary>x rounded as MatMul rounds it for the weight type (ggml's from_float for vec_dot_type, then back to float).</summary>
    private static double[] RoundedActivations(GgmlType type, float[] x, int cols)
    {
        var r = new double[x.Length];
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < x.Length; i++) r[i] = x[i];
                break;
            case GgmlType.F16:
                for (int i = 0; i < x.Length; i++) r[i] = (float)(Half)x[i];
                break;
            case GgmlType.BF16:
                for (int i = 0; i < x.Length; i++) r[i] = HalfConvert.BF16ToF32(HalfConvert.F32ToBF16(x[i]));
                break;
            case GgmlType.Q8_0:
                var q = new byte[GgmlTypeInfo.RowBytes(GgmlType.Q8_0, x.Length)];
                fixed (float* px = x)
                fixed (byte* pq = q)
                {
                    for (int t = 0; t < x.Length / cols; t++) Q8_0Kernels.QuantizeRowQ8_0(px + t * cols, pq + t * (cols / 32) * 34, cols);
                }
                for (int b = 0; b < x.Length / 32; b++)
                {
                    double d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(q, b * 34));
                    for (int j = 0; j < 32; j++) r[b * 32 + j] = d * (sbyte)q[b * 34 + 2 + j];
                }
                break;
            case GgmlType.Q4_K or GgmlType.Q6_K:
                var q8 = new byte[Q8_KAligned.RowBytes(x.Length)];
                var f = new float[x.Length];
                fixed (float* px = x, pf = f)
                fixed (byte* pq = q8)
                {
                    Q8_KAligned.QuantizeReference(px, pq, x.Length);
                    Q8_KAligned.ToFloat(pq, pf, x.Length);
                }
                for (int i = 0; i < x.Length; i++) r[i] = f[i];
                break;
        }
        return r;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compute_MatchesNaiveProduct(int level, GgmlType type, int threads, int cols)
    {
        var table = KernelTable.Create((SimdLevel)level);
        const int rows = 37;
        float[] wf = KernelTestData.Random(rows * cols, 42, 0.5f);
        var wq = new byte[GgmlTypeInfo.RowBytes(type, cols) * rows];
        for (int r = 0; r < rows; r++)
        {
            Quantization.QuantizeRow(type, wf.AsSpan(r * cols, cols), wq.AsSpan((int)(r * GgmlTypeInfo.RowBytes(type, cols))), table);
        }
        var wd = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            Quantization.DequantizeRow(type, wq.AsSpan((int)(r * GgmlTypeInfo.RowBytes(type, cols))), wd.AsSpan(r * cols, cols), table);
        }

        using var pool = new ComputePool(threads);
        byte* data = (byte*)NativeMemory.AlignedAlloc((nuint)wq.Length, 64);
        try
        {
            wq.CopyTo(new Span<byte>(data, wq.Length));
            var w = new WeightMatrix(type, data, rows, cols);
            foreach (int nTokens in new[] { 1, 2, 3, 4, 6, 7, 8, 12, 33, 70 })
            {
                float[] x = KernelTestData.Activations(nTokens * cols, nTokens);
                var y = new float[nTokens * rows + 1];
                y[^1] = 12345f; // must stay untouched
                MatMul.Compute(pool, w, x, nTokens, y.AsSpan(0, nTokens * rows), table);
                Assert.Equal(12345f, y[^1]);
                double[] xr = RoundedActivations(type, x, cols);
                for (int t = 0; t < nTokens; t++)
                {
                    for (int r = 0; r < rows; r++)
                    {
                        double exact = 0, raw = 0, scale = 0;
                        for (int c = 0; c < cols; c++)
                        {
                            double wv = wd[r * cols + c];
                            exact += wv * xr[t * cols + c];
                            raw += wv * x[t * cols + c];
                            scale += Math.Abs(wv * x[t * cols + c]);
                        }
                        string what = $"{(SimdLevel)level} {type} threads {threads} cols {cols} nTokens {nTokens} t {t} r {r}";
                        KernelTestData.Close(exact, y[t * rows + r], scale, SameSemanticsRelTol, what + " (same rounding)");
                        KernelTestData.Close(raw, y[t * rows + r], scale, RawRelTol(type), what + " (raw activations)");
                    }
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 5)]
    [InlineData(2, 37)]
    [InlineData(1, 40)]
    public void Compute_SharedInputOverloadsMatchSeparateCalls(int threads, int nTokens)
    {
        // Q/K/V and gate/up share their input: converted once, rows of all matrices in one pool pass, same results
        const int cols = 96;
        int[] rows = [33, 8, 8];
        using var pool = new ComputePool(threads);
        var data = new List<nint>();
        try
        {
            var w = new WeightMatrix[3];
            for (int i = 0; i < 3; i++)
            {
                long rb = GgmlTypeInfo.RowBytes(GgmlType.Q8_0, cols);
                byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(rb * rows[i]), 64);
                data.Add((nint)p);
                float[] wf = KernelTestData.Random(rows[i] * cols, 5 + i, 0.5f);
                for (int r = 0; r < rows[i]; r++)
                    Quantization.QuantizeRow(GgmlType.Q8_0, wf.AsSpan(r * cols, cols), new Span<byte>(p + r * rb, (int)rb));
                w[i] = new WeightMatrix(GgmlType.Q8_0, p, rows[i], cols);
            }
            float[] x = KernelTestData.Activations(nTokens * cols, 3);
            var separate = rows.Select(r => new float[nTokens * r]).ToArray();
            for (int i = 0; i < 3; i++) MatMul.Compute(pool, w[i], x, nTokens, separate[i]);
            var fused = rows.Select(r => new float[nTokens * r]).ToArray();
            MatMul.Compute(pool, w[0], w[1], w[2], x, nTokens, fused[0], fused[1], fused[2]);
            for (int i = 0; i < 3; i++) Assert.Equal(separate[i], fused[i]);
            var pair = rows.Take(2).Select(r => new float[nTokens * r]).ToArray();
            MatMul.Compute(pool, w[0], w[1], x, nTokens, pair[0], pair[1]);
            for (int i = 0; i < 2; i++) Assert.Equal(separate[i], pair[i]);
        }
        finally
        {
            foreach (var p in data) NativeMemory.AlignedFree((void*)p);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 3)]
    [InlineData(2, 9)]
    [InlineData(1, 21)]
    public void Compute_ProductListMatchesSeparateCalls(int threads, int nTokens)
    {
        // one pass over products of different types, widths and inputs, some sharing an input, some reading and writing
        // strided rows (a head's slice of a wider row): each result equals that of the product computed alone
        (GgmlType Type, int Rows, int Cols, int Input)[] specs =
        [
            (GgmlType.Q4_K, 19, 256, 0), (GgmlType.Q4_K, 7, 256, 0), (GgmlType.Q5_0, 11, 64, 1), (GgmlType.Q8_0, 5, 64, 1),
            (GgmlType.F32, 3, 256, 0), (GgmlType.Q5_0, 13, 96, 2), (GgmlType.Q6_K, 4, 256, 0), (GgmlType.Q5_0, 2, 64, 1),
        ];
        const int xStride = 300, yPad = 3;
        using var pool = new ComputePool(threads);
        var data = new List<nint>();
        try
        {
            float[][] inputs = Enumerable.Range(0, 3).Select(i => KernelTestData.Activations(nTokens * xStride, 10 + i)).ToArray();
            var w = new WeightMatrix[specs.Length];
            for (int i = 0; i < specs.Length; i++)
            {
                var (type, rows, cols, _) = specs[i];
                long rb = GgmlTypeInfo.RowBytes(type, cols);
                byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(rb * rows), 64);
                data.Add((nint)p);
                float[] wf = KernelTestData.Random(rows * cols, 20 + i, 0.5f);
                for (int r = 0; r < rows; r++)
                    Quantization.QuantizeRow(type, wf.AsSpan(r * cols, cols), new Span<byte>(p + r * rb, (int)rb));
                w[i] = new WeightMatrix(type, p, rows, cols);
            }
            var separate = new float[specs.Length][];
            var together = new float[specs.Length][];
            var pinned = new List<GCHandle>();
            try
            {
                var products = new MatMulProduct[specs.Length];
                for (int i = 0; i < specs.Length; i++)
                {
                    var (_, rows, cols, input) = specs[i];
                    separate[i] = new float[nTokens * rows];
                    var contiguous = new float[nTokens * cols];
                    for (int t = 0; t < nTokens; t++) inputs[input].AsSpan(t * xStride, cols).CopyTo(contiguous.AsSpan(t * cols));
                    MatMul.Compute(pool, w[i], contiguous, nTokens, separate[i]);

                    together[i] = new float[nTokens * (rows + yPad)];
                    together[i].AsSpan().Fill(float.NaN);
                    var hx = GCHandle.Alloc(inputs[input], GCHandleType.Pinned);
                    var hy = GCHandle.Alloc(together[i], GCHandleType.Pinned);
                    pinned.Add(hx);
                    pinned.Add(hy);
                    products[i] = new MatMulProduct(w[i], (float*)hx.AddrOfPinnedObject(), xStride, nTokens, (float*)hy.AddrOfPinnedObject(), rows + yPad);
                }
                MatMul.Compute(pool, products);
            }
            finally
            {
                foreach (var h in pinned) h.Free();
            }
            for (int i = 0; i < specs.Length; i++)
            {
                int rows = specs[i].Rows;
                for (int t = 0; t < nTokens; t++)
                {
                    Assert.Equal(separate[i].AsSpan(t * rows, rows), together[i].AsSpan(t * (rows + yPad), rows));
                    Assert.All(together[i].AsSpan(t * (rows + yPad) + rows, yPad).ToArray(), v => Assert.True(float.IsNaN(v)));
                }
            }
        }
        finally
        {
            foreach (var p in data) NativeMemory.AlignedFree((void*)p);
        }
    }

    [Fact]
    public void Compute_DefaultTableAndValidation()
    {
        using var pool = new ComputePool(1);
        float[] wf = [1, 2, 3, 4, 5, 6];
        fixed (float* p = wf)
        {
            var w = new WeightMatrix(GgmlType.F32, (byte*)p, 2, 3);
            Assert.Equal(12, w.RowBytes);
            var y = new float[2];
            MatMul.Compute(pool, w, [1f, 0f, -1f], 1, y);
            Assert.Equal([-2f, -2f], y);
            Assert.Throws<ArgumentException>(() => MatMul.Compute(pool, w, [1f, 0f], 1, y));
            Assert.Throws<ArgumentException>(() => MatMul.Compute(pool, w, [1f, 0f, 1f], 1, new float[1]));
        }
        Assert.Throws<ArgumentException>(() => new WeightMatrix(GgmlType.Q8_0, null, 1, 33));
    }
}
