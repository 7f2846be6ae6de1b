// The interleaved decode layouts (Q4_K and Q6_K in groups of 8 rows, Q8_0 in groups of 16, Q5_0 of 16 at 512 bits and 8 at 256): Deinterleave undoes
// Interleave byte for byte, and the group dot matches the dot of each row's dequantized values with the activations'
// (integer block sums exact; only float rounding differs), with the same bits for a token alone or with others, at
// every SIMD level of this machine that has the layout; a matrix left native and interleaved as it is read gives the
// interleaved one's bits at every batch size.
using System.Runtime.InteropServices;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class InterleavedLayoutTests
{
    /// <summary>Row lengths: 1 to 35 super-blocks of Q4_K; for Q8_0 also odd block counts.</summary>
    private static int[] Lengths(GgmlType type) => type switch
    {
        GgmlType.Q8_0 => [32, 96, 7 * 32, 256, 33 * 32, 280 * 32],
        GgmlType.Q5_0 => [32, 4 * 32, 7 * 32, 256, 44 * 32, 342 * 32], // V2-Lite's k_b (128), expert down (1408), dense down (10944)
        _ => [256, 512, 3 * 256, 6 * 256, 35 * 256],
    };

    public static TheoryData<GgmlType> Types() => new() { GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0, GgmlType.Q5_0 };

    /// <summary>This machine's kernels of the type, or null (with the reason printed) where it has no interleaved layout.</summary>
    private static TypeKernels? Kernels(GgmlType type, string test) => Kernels(KernelTable.Default, type, test);

    private static TypeKernels? Kernels(KernelTable table, GgmlType type, string test)
    {
        ref readonly TypeKernels k = ref table[type];
        if (k.DotInterleaved != null) return k;
        Console.WriteLine($"{test}({type}): skipped at {table.Level}, no interleaved {type} layout at that SIMD level");
        return null;
    }

    /// <summary>The kernel tables of every SIMD level this machine runs.</summary>
    private static IEnumerable<KernelTable> Tables() => Simd.Supported.Select(KernelTable.Create);

    /// <summary>A group of rows of n values quantized from activations-like data, with a few extreme blocks.</summary>
    private static byte[] Rows(GgmlType type, int rows, int n, int seed)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, n);
        var w = new byte[rowBytes * rows];
        for (int r = 0; r < rows; r++)
        {
            float[] wf = KernelTestData.Activations(n, seed + r);
            if (r == 3) wf[n / 2] = 50f; // one block with an outlier: small scales elsewhere in it
            if (r == 5) for (int i = 0; i < Math.Min(n, 256); i++) wf[i] = i % 2 == 0 ? 1f : -1f; // quants at both ends of their range
            Quantization.QuantizeRow(type, wf, w.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        return w;
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Deinterleave_UndoesInterleave(GgmlType type)
    {
        foreach (KernelTable table in Tables())
            if (Kernels(table, type, nameof(Deinterleave_UndoesInterleave)) is TypeKernels k) DeinterleaveUndoesInterleave(type, k);
    }

    private static void DeinterleaveUndoesInterleave(GgmlType type, in TypeKernels k)
    {
        foreach (int n in Lengths(type))
        {
            byte[] native = Rows(type, k.InterleaveRows, n, n);
            long rowBytes = native.Length / k.InterleaveRows;
            var x = new byte[native.Length];
            var back = new byte[native.Length];
            fixed (byte* pn = native, px = x, pb = back)
            {
                k.Interleave(pn, rowBytes, n, px);
                k.Deinterleave(px, n, pb, rowBytes);
            }
            Assert.Equal(native, back);
            Assert.NotEqual(native, x);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Dot_MatchesDequantizedDotOfEachRow_ForEveryTokenCount(GgmlType type)
    {
        foreach (KernelTable table in Tables())
            if (Kernels(table, type, nameof(Dot_MatchesDequantizedDotOfEachRow_ForEveryTokenCount)) is TypeKernels k) DotMatchesDequantizedDot(type, k);
    }

    private static void DotMatchesDequantizedDot(GgmlType type, in TypeKernels k)
    {
        int G = k.InterleaveRows, T = k.InterleaveTokens;
        foreach (int n in Lengths(type))
        {
            byte[] native = Rows(type, G, n, 7 * n);
            long rowBytes = native.Length / G, stride = k.ActivationRowBytes(n);
            byte* xw = (byte*)NativeMemory.AlignedAlloc((nuint)native.Length, 64);
            byte* act = (byte*)NativeMemory.AlignedAlloc((nuint)(stride * T), 64);
            try
            {
                for (int t = 0; t < T; t++)
                {
                    float[] x = KernelTestData.Activations(n, n + 1 + t);
                    x[(1 + t) % n] = -1000f; // a quant of -127 and every other small
                    fixed (float* px = x) k.QuantizeActivations(px, act + t * stride, n);
                }
                var wd = new float[n];
                var xd = new float[n];
                fixed (byte* pn = native)
                {
                    k.Interleave(pn, rowBytes, n, xw);
                    var alone = new float[T * G];
                    for (int t = 0; t < T; t++)
                        fixed (float* py = alone) k.DotInterleaved(xw, act + t * stride, 0, 1, n, py + t * G, 0);
                    for (int tokens = 1; tokens <= T; tokens++)
                    {
                        var y = new float[T * (G + 1)];
                        fixed (float* py = y) k.DotInterleaved(xw, act, stride, tokens, n, py, G + 1);
                        for (int t = 0; t < T; t++)
                        {
                            Assert.Equal(0f, y[t * (G + 1) + G]); // nothing past the group's rows
                            for (int r = 0; r < G; r++)
                                Assert.Equal(t < tokens ? alone[t * G + r] : 0f, y[t * (G + 1) + r]); // alone or with others: the same bits
                        }
                    }
                    if (k.DotGroupOnRead != null)
                    {
                        // the native rows read as interleaved: the same bits, at every length
                        var onRead = new float[G];
                        for (int t = 0; t < T; t++)
                        {
                            fixed (float* py = onRead) k.DotGroupOnRead(pn, rowBytes, act + t * stride, n, py);
                            Assert.Equal(alone.AsSpan(t * G, G).ToArray(), onRead);
                        }
                    }
                    for (int t = 0; t < T; t++)
                    {
                        fixed (float* pxd = xd) k.ActivationsToFloat(act + t * stride, pxd, n);
                        for (int r = 0; r < G; r++)
                        {
                            // against the dot of what the two rows stand for: each row's block sum is one exact integer
                            // (the native SIMD dots sum 8 or 16 partial lanes in float, which can cancel: Q6_K's is
                            // further from this)
                            Quantization.DequantizeRow(type, new ReadOnlySpan<byte>(pn + r * rowBytes, (int)rowBytes), wd);
                            double exact = 0, scale = 0;
                            for (int i = 0; i < n; i++)
                            {
                                exact += (double)wd[i] * xd[i];
                                scale += Math.Abs((double)wd[i] * xd[i]);
                            }
                            KernelTestData.Close(exact, alone[t * G + r], scale, 1e-5, $"{type} n {n} token {t} row {r}");
                        }
                    }
                }
            }
            finally
            {
                NativeMemory.AlignedFree(xw);
                NativeMemory.AlignedFree(act);
            }
        }
    }

    public static TheoryData<GgmlType, int> TypesAndThreads() => new()
    {
        { GgmlType.Q4_K, 1 }, { GgmlType.Q4_K, 2 }, { GgmlType.Q6_K, 1 }, { GgmlType.Q6_K, 2 }, { GgmlType.Q8_0, 1 }, { GgmlType.Q8_0, 2 },
        { GgmlType.Q5_0, 1 }, { GgmlType.Q5_0, 2 },
    };

    [Theory]
    [MemberData(nameof(TypesAndThreads))]
    public void MatMul_InterleavedMatchesNative(GgmlType type, int threads)
    {
        // 5 groups; decode, batches read interleaved (partial token tiles) and, where the type has a limit, prefill on
        // de-interleaved rows; alone and sharing its input with a native matrix of the same type (converted once: the
        // native one's packed activations must still be made)
        if (Kernels(type, nameof(MatMul_InterleavedMatchesNative)) is not TypeKernels k) return;
        int rows = 5 * k.InterleaveRows, cols = 512;
        using var pool = new ComputePool(threads);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        byte* a = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * rowBytes), 64);
        byte* b = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * rowBytes), 64);
        try
        {
            float[] wf = KernelTestData.Random(rows * cols, 11, 0.5f);
            for (int r = 0; r < rows; r++)
                Quantization.QuantizeRow(type, wf.AsSpan(r * cols, cols), new Span<byte>(a + r * rowBytes, (int)rowBytes));
            Buffer.MemoryCopy(a, b, rows * rowBytes, rows * rowBytes);
            var native = new WeightMatrix(type, a, rows, cols);
            Assert.True(native.CanInterleave);
            WeightMatrix xw = new WeightMatrix(type, b, rows, cols).Interleave(pool);
            Assert.True(xw.Interleaved);
            WeightMatrix onRead = native.InterleaveOnRead();
            Assert.True(onRead.InterleavesOnRead && !onRead.Interleaved && onRead.Data == native.Data);
            var row = new float[cols];
            var rowNative = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                xw.DequantizeRow(r, row);
                native.DequantizeRow(r, rowNative);
                Assert.Equal(rowNative, row);
            }
            foreach (int nTokens in new[] { 1, 2, 3, 4, 5, 9, 17, 33 })
            {
                float[] x = KernelTestData.Activations(nTokens * cols, 100 + nTokens);
                var yn = new float[nTokens * rows];
                var yi = new float[nTokens * rows];
                MatMul.Compute(pool, native, x, nTokens, yn);
                MatMul.Compute(pool, xw, x, nTokens, yi);
                for (int t = 0; t < nTokens; t++)
                {
                    var alone = new float[rows];
                    MatMul.Compute(pool, xw, x.AsSpan(t * cols, cols), 1, alone);
                    for (int r = 0; r < rows; r++)
                    {
                        double scale = 0;
                        native.DequantizeRow(r, rowNative);
                        for (int c = 0; c < cols; c++) scale += Math.Abs((double)rowNative[c] * x[t * cols + c]);
                        KernelTestData.Close(yn[t * rows + r], yi[t * rows + r], scale, 1e-5, $"{type} tokens {nTokens} t {t} r {r}");
                        // decode and batches read as interleaved agree bit for bit (larger ones take the packed kernel)
                        if (nTokens <= k.InterleavedMaxTokens) Assert.Equal(alone[r], yi[t * rows + r]);
                    }
                }
                var pairI = new float[nTokens * rows];
                var pairN = new float[nTokens * rows];
                MatMul.Compute(pool, xw, native, x, nTokens, pairI, pairN);
                Assert.Equal(yi, pairI);
                Assert.Equal(yn, pairN);
                // interleaved as read: the rewritten matrix's bits, alone, beside a native matrix, and sliced by groups
                var yr = new float[nTokens * rows];
                MatMul.Compute(pool, onRead, x, nTokens, yr);
                Assert.Equal(yi, yr);
                MatMul.Compute(pool, onRead, native, x, nTokens, pairI, pairN);
                Assert.Equal(yi, pairI);
                Assert.Equal(yn, pairN);
                int G = k.InterleaveRows;
                var ys = new float[nTokens * 2 * G];
                var ysi = new float[nTokens * 2 * G];
                MatMul.Compute(pool, onRead.Slice(G, 2 * G), x, nTokens, ys);
                MatMul.Compute(pool, xw.Slice(G, 2 * G), x, nTokens, ysi);
                Assert.Equal(ysi, ys);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
        }
    }

    [Fact]
    public void MatMul_SharedInputOfLayoutsWithDifferentBatchLimits_MatchesEachAlone()
    {
        // Q4_K reads its interleaved rows up to 16 tokens, Q6_K up to 8: at 12 tokens one reads the plain activations
        // and the other the packed ones, so the two must not share one conversion (as Q, K and V share theirs)
        if (Kernels(GgmlType.Q4_K, nameof(MatMul_SharedInputOfLayoutsWithDifferentBatchLimits_MatchesEachAlone)) is not TypeKernels k4
            || Kernels(GgmlType.Q6_K, nameof(MatMul_SharedInputOfLayoutsWithDifferentBatchLimits_MatchesEachAlone)) is not TypeKernels k6)
            return;
        const int rows = 32, cols = 512, nTokens = 12;
        Assert.True(nTokens <= k4.InterleavedMaxTokens && nTokens > k6.InterleavedMaxTokens);
        using var pool = new ComputePool(2);
        var mats = new List<nint>();
        try
        {
            WeightMatrix Make(GgmlType type, int seed)
            {
                long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
                byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)(rows * rowBytes), 64);
                mats.Add((nint)p);
                float[] wf = KernelTestData.Random(rows * cols, seed, 0.5f);
                for (int r = 0; r < rows; r++)
                    Quantization.QuantizeRow(type, wf.AsSpan(r * cols, cols), new Span<byte>(p + r * rowBytes, (int)rowBytes));
                return new WeightMatrix(type, p, rows, cols).Interleave(pool);
            }
            WeightMatrix a = Make(GgmlType.Q4_K, 1), b = Make(GgmlType.Q6_K, 2);
            float[] x = KernelTestData.Activations(nTokens * cols, 3);
            var ya = new float[nTokens * rows];
            var yb = new float[nTokens * rows];
            var yaAlone = new float[nTokens * rows];
            var ybAlone = new float[nTokens * rows];
            MatMul.Compute(pool, a, b, x, nTokens, ya, yb);
            MatMul.Compute(pool, a, x, nTokens, yaAlone);
            MatMul.Compute(pool, b, x, nTokens, ybAlone);
            Assert.Equal(yaAlone, ya);
            Assert.Equal(ybAlone, yb);
        }
        finally
        {
            foreach (nint p in mats) NativeMemory.AlignedFree((void*)p);
        }
    }
}
