// The interleaved Q4_K decode layout: Deinterleave undoes Interleave byte for byte, and the 8-row dot matches the
// native one-row dot of each row (integer sums exact; only the float accumulation order differs).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class Q4KInterleavedTests
{
    private static readonly int[] s_lengths = [256, 512, 3 * 256, 6 * 256, 35 * 256];

    /// <summary>8 rows of n values quantized from activations-like data, with a few extreme blocks.</summary>
    private static byte[] Rows(int n, int seed)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(GgmlType.Q4_K, n);
        var w = new byte[rowBytes * Q4KInterleaved.Rows];
        for (int r = 0; r < Q4KInterleaved.Rows; r++)
        {
            float[] wf = KernelTestData.Activations(n, seed + r);
            if (r == 3) wf[n / 2] = 50f; // one block with an outlier: small scales elsewhere in it
            if (r == 5) for (int i = 0; i < 256; i++) wf[i] = i % 2 == 0 ? 1f : -1f; // every nibble at 0 or 15
            Quantization.QuantizeRow(GgmlType.Q4_K, wf, w.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        return w;
    }

    [Fact]
    public void Deinterleave_UndoesInterleave()
    {
        foreach (int n in s_lengths)
        {
            byte[] native = Rows(n, n);
            long rowBytes = native.Length / Q4KInterleaved.Rows;
            var x8 = new byte[native.Length];
            var back = new byte[native.Length];
            fixed (byte* pn = native, px = x8, pb = back)
            {
                Q4KInterleaved.Interleave(pn, rowBytes, n, px);
                Q4KInterleaved.Deinterleave(px, n, pb, rowBytes);
            }
            Assert.Equal(native, back);
            Assert.NotEqual(native, x8);
        }
    }

    [Fact]
    public void Dot_MatchesNativeDotOfEachRow_ForEveryTokenCount()
    {
        if (!Simd.IsSupported(SimdLevel.V256))
        {
            Console.WriteLine("Dot_MatchesNativeDotOfEachRow_ForEveryTokenCount: skipped, this machine has no AVX2");
            return;
        }
        // the 256-bit table: its activations are the Q8_KAligned layout the interleaved dot reads
        ref readonly TypeKernels k = ref KernelTable.Create(SimdLevel.V256)[GgmlType.Q4_K];
        const int G = Q4KInterleaved.Rows, T = TypeKernels.InterleaveTokens;
        foreach (int n in s_lengths)
        {
            byte[] native = Rows(n, 7 * n);
            long rowBytes = native.Length / G, stride = k.ActivationRowBytes(n);
            byte* x8 = (byte*)NativeMemory.AlignedAlloc((nuint)native.Length, 64);
            byte* act = (byte*)NativeMemory.AlignedAlloc((nuint)(stride * T), 64);
            try
            {
                for (int t = 0; t < T; t++)
                {
                    float[] x = KernelTestData.Activations(n, n + 1 + t);
                    x[1 + t] = -1000f; // a quant of -127 and every other small
                    fixed (float* px = x) k.QuantizeActivations(px, act + t * stride, n);
                }
                var wd = new float[n];
                var xd = new float[n];
                fixed (byte* pn = native)
                {
                    Q4KInterleaved.Interleave(pn, rowBytes, n, x8);
                    var alone = new float[T * G];
                    for (int t = 0; t < T; t++)
                        fixed (float* py = alone) Q4KInterleaved.Dot(x8, act + t * stride, 0, 1, n, py + t * G, 0);
                    for (int tokens = 1; tokens <= T; tokens++)
                    {
                        var y = new float[T * (G + 1)];
                        fixed (float* py = y) Q4KInterleaved.Dot(x8, act, stride, tokens, n, py, G + 1);
                        for (int t = 0; t < T; t++)
                        {
                            Assert.Equal(0f, y[t * (G + 1) + G]); // nothing past the group's rows
                            for (int r = 0; r < G; r++)
                                Assert.Equal(t < tokens ? alone[t * G + r] : 0f, y[t * (G + 1) + r]); // alone or with others: the same bits
                        }
                    }
                    for (int t = 0; t < T; t++)
                    {
                        fixed (float* pxd = xd) k.ActivationsToFloat(act + t * stride, pxd, n);
                        for (int r = 0; r < G; r++)
                        {
                            float expected = k.Dot(pn + r * rowBytes, act + t * stride, n);
                            Quantization.DequantizeRow(GgmlType.Q4_K, new ReadOnlySpan<byte>(pn + r * rowBytes, (int)rowBytes), wd);
                            double scale = 0;
                            for (int i = 0; i < n; i++) scale += Math.Abs((double)wd[i] * xd[i]);
                            KernelTestData.Close(expected, alone[t * G + r], scale, 1e-5, $"n {n} token {t} row {r}");
                        }
                    }
                }
            }
            finally
            {
                NativeMemory.AlignedFree(x8);
                NativeMemory.AlignedFree(act);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void MatMul_InterleavedMatchesNative(int threads)
    {
        // 5 groups of 8 rows; decode, batches read interleaved (partial token tiles) and prefill on de-interleaved
        // rows, alone and sharing its input with
        // a native matrix of the same type (converted once: the native one's packed activations must still be made)
        const int rows = 40, cols = 512;
        using var pool = new ComputePool(threads);
        long rowBytes = GgmlTypeInfo.RowBytes(GgmlType.Q4_K, cols);
        byte* a = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * rowBytes), 64);
        byte* b = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * rowBytes), 64);
        try
        {
            float[] wf = KernelTestData.Random(rows * cols, 11, 0.5f);
            for (int r = 0; r < rows; r++)
                Quantization.QuantizeRow(GgmlType.Q4_K, wf.AsSpan(r * cols, cols), new Span<byte>(a + r * rowBytes, (int)rowBytes));
            Buffer.MemoryCopy(a, b, rows * rowBytes, rows * rowBytes);
            var native = new WeightMatrix(GgmlType.Q4_K, a, rows, cols);
            if (!native.CanInterleave)
            {
                Console.WriteLine("MatMul_InterleavedMatchesNative: skipped, no interleaved Q4_K layout at this machine's SIMD level");
                return;
            }
            WeightMatrix x8 = new WeightMatrix(GgmlType.Q4_K, b, rows, cols).Interleave();
            Assert.True(x8.Interleaved);
            var row = new float[cols];
            var rowNative = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                x8.DequantizeRow(r, row);
                native.DequantizeRow(r, rowNative);
                Assert.Equal(rowNative, row);
            }
            foreach (int nTokens in new[] { 1, 2, 3, 4, 5, 9, 33 })
            {
                float[] x = KernelTestData.Activations(nTokens * cols, 100 + nTokens);
                var yn = new float[nTokens * rows];
                var yi = new float[nTokens * rows];
                MatMul.Compute(pool, native, x, nTokens, yn);
                MatMul.Compute(pool, x8, x, nTokens, yi);
                for (int t = 0; t < nTokens; t++)
                {
                    var alone = new float[rows];
                    MatMul.Compute(pool, x8, x.AsSpan(t * cols, cols), 1, alone);
                    for (int r = 0; r < rows; r++)
                    {
                        double scale = 0;
                        native.DequantizeRow(r, rowNative);
                        for (int c = 0; c < cols; c++) scale += Math.Abs((double)rowNative[c] * x[t * cols + c]);
                        KernelTestData.Close(yn[t * rows + r], yi[t * rows + r], scale, 1e-5, $"tokens {nTokens} t {t} r {r}");
                        // decode and batches read as interleaved agree bit for bit (larger ones take the packed kernel)
                        if (nTokens <= MatMul.InterleavedTokens) Assert.Equal(alone[r], yi[t * rows + r]);
                    }
                }
                var pairI = new float[nTokens * rows];
                var pairN = new float[nTokens * rows];
                MatMul.Compute(pool, x8, native, x, nTokens, pairI, pairN);
                Assert.Equal(yi, pairI);
                Assert.Equal(yn, pairN);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
        }
    }
}
