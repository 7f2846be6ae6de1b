using R1Sharp.Kernels;
using R1Sharp.Sampling;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

/// <summary>
/// Every backward function against central finite differences of its forward, with the scalar objective
/// L = Σ dy·y for a random dy (accumulated in double, so F32 rounding stays far below the tolerance).
/// </summary>
public sealed class GradientCheckTests
{
    private const float Eps = 1e-2f;

    private static float[] Random(int n, ulong seed, float scale = 1f)
    {
        var rng = new Xoshiro256(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = rng.NextSignedFloat() * scale;
        return a;
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }

    /// <summary>Checks d objective / d x[i] for every i against the analytic gradient.</summary>
    private static void Check(float[] x, ReadOnlySpan<float> analytic, Func<double> objective, string what, double tol = 2e-3)
    {
        double scale = 1e-3;
        foreach (float g in analytic) scale = Math.Max(scale, Math.Abs(g));
        for (int i = 0; i < x.Length; i++)
        {
            float keep = x[i];
            x[i] = keep + Eps; double plus = objective();
            x[i] = keep - Eps; double minus = objective();
            x[i] = keep;
            double numeric = (plus - minus) / (2 * Eps);
            Assert.True(Math.Abs(numeric - analytic[i]) <= tol * scale + 1e-4,
                $"{what}[{i}]: numeric {numeric:G6} vs analytic {analytic[i]:G6} (scale {scale:G3})");
        }
    }

    [Fact]
    public void RmsNorm()
    {
        int n = 3, dim = 8;
        var x = Random(n * dim, 1); var w = Random(dim, 2); var dy = Random(n * dim, 3);
        var y = new float[n * dim]; var rstd = new float[n];
        double Obj() { RmsNormLayer.Forward(x, w, y, rstd, n, dim, 1e-6f); return Dot(dy, y); }
        Obj();
        var dx = new float[n * dim]; var dw = new float[dim];
        RmsNormLayer.Backward(dy, x, w, rstd, dx, dw, n, dim);
        Check(x, dx, Obj, "dx");
        Check(w, dw, Obj, "dw");
    }

    [Fact]
    public void SwiGlu()
    {
        int n = 40;
        var g = Random(n, 4, 3); var u = Random(n, 5, 2); var dh = Random(n, 6);
        var h = new float[n];
        double Obj() { SwiGluLayer.Forward(g, u, h); return Dot(dh, h); }
        var dg = new float[n]; var du = new float[n];
        SwiGluLayer.Backward(dh, g, u, dg, du);
        Check(g, dg, Obj, "dg");
        Check(u, du, Obj, "du");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rope(bool neox)
    {
        int n = 3, heads = 2, hd = 8;
        var table = new RopeTable(16, hd, 10000f);
        var x = Random(n * heads * hd, 7); var dy = Random(n * heads * hd, 8);
        int[] pos = [0, 5, 11];
        double Obj() { var y = (float[])x.Clone(); table.Apply(y, n, heads, hd, pos, neox, inverse: false); return Dot(dy, y); }
        var dx = (float[])dy.Clone();
        table.Apply(dx, n, heads, hd, pos, neox, inverse: true);
        Check(x, dx, Obj, "dx");
    }

    /// <summary>Head sizes and lengths that reach the scalar tails, the 16- and 64-wide blocks and partial row blocks.</summary>
    [Theory]
    [InlineData(new[] { 4, 3 }, 4, 2, 4)]
    [InlineData(new[] { 37, 70 }, 2, 1, 16)]
    [InlineData(new[] { 21 }, 2, 2, 64)]
    public void AttentionWithGroupedHeads(int[] lengths, int heads, int kvHeads, int headDim)
    {
        var b = new PackedBatch(lengths.Select(l => new int[l]).ToList());
        var sh = new AttentionLayer.Shape(heads, kvHeads, headDim);
        int n = b.TokenCount;
        var q = Random(n * sh.QDim, 9); var k = Random(n * sh.KDim, 10); var v = Random(n * sh.KDim, 11);
        var datt = Random(n * sh.QDim, 12);
        var att = new float[n * sh.QDim]; var probs = new float[b.ProbCount * sh.Heads];
        double Obj()
        {
            for (int item = 0; item < b.Count * sh.KvHeads; item++) AttentionLayer.Forward(b, sh, q, k, v, att, probs, item);
            return Dot(datt, att);
        }
        Obj();
        var dq = new float[q.Length]; var dk = new float[k.Length]; var dv = new float[v.Length];
        for (int item = 0; item < b.Count * sh.KvHeads; item++) AttentionLayer.Backward(b, sh, q, k, v, probs, datt, dq, dk, dv, item);
        Check(q, dq, Obj, "dq");
        Check(k, dk, Obj, "dk");
        Check(v, dv, Obj, "dv");
    }

    [Fact]
    public void LogProbsOfTargets()
    {
        int n = 3, vocab = 7;
        var logits = Random(n * vocab, 13, 2);
        int[] targets = [2, -1, 6];
        float[] g = [0.7f, 0f, -1.3f];
        var logp = new float[n];
        double Obj() { LogProbs.Compute(logits, targets, vocab, logp); return Dot(g, logp); }
        var d = new float[n * vocab];
        LogProbs.Backward(logits, targets, g, vocab, d);
        Check(logits, d, Obj, "dlogits");
    }

    [Theory]
    [InlineData(5, 7, 130, false)]
    [InlineData(8, 3, 64, true)]
    [InlineData(1, 9, 200, true)]
    [InlineData(6, 1000, 80, true)]     // K swept in chunks
    [InlineData(7, 700, 20, false)]
    public unsafe void GemmMatchesNaiveProducts(int I, int K, int J, bool accumulate)
    {
        var a = Random(I * K, 14); var b = Random(K * J, 15); var c = Random(I * J, 16);
        var expected = new double[I * J];
        for (int i = 0; i < I; i++)
            for (int j = 0; j < J; j++)
            {
                double s = accumulate ? c[i * J + j] : 0;
                for (int kk = 0; kk < K; kk++) s += (double)a[i * K + kk] * b[kk * J + j];
                expected[i * J + j] = s;
            }
        using var pool = new ComputePool(2);
        fixed (float* pa = a, pb = b, pc = c) Gemm.Multiply(pool, pa, pb, pc, I, K, J, accumulate);
        for (int i = 0; i < I * J; i++) Assert.Equal(expected[i], c[i], 1e-4);
        var t = new float[K * J];
        fixed (float* pb = b, pt = t) Gemm.Transpose(pool, pb, pt, K, J);
        for (int r = 0; r < K; r++) for (int col = 0; col < J; col++) Assert.Equal(b[r * J + col], t[col * K + r]);
        // the same product from A stored transposed (K × I)
        var at = new float[K * I];
        fixed (float* pa = a, pat = at) Gemm.Transpose(pool, pa, pat, I, K);
        var c2 = Random(I * J, 16);
        fixed (float* pat = at, pb = b, pc = c2) Gemm.MultiplyTransposedA(pool, pat, pb, pc, I, K, J, accumulate);
        for (int i = 0; i < I * J; i++) Assert.Equal(expected[i], c2[i], 1e-4);
    }

    /// <summary>The one-thread products with strides and zero triangles against naive sums over the full matrices.</summary>
    [Theory]
    [InlineData(Gemm.Triangle.None, 9, 70, 33)]
    [InlineData(Gemm.Triangle.LowerA, 67, 67, 64)]
    [InlineData(Gemm.Triangle.UpperA, 67, 67, 16)]
    [InlineData(Gemm.Triangle.LowerC, 70, 16, 70)]
    public unsafe void SerialGemmWithStridesAndTriangles(Gemm.Triangle tri, int I, int K, int J)
    {
        int lda = K + 3, ldb = J + 5, ldc = J + 7;
        var a = Random(I * lda, 17); var b = Random(K * ldb, 18); var c = Random(I * ldc, 19);
        for (int i = 0; i < I; i++)
            for (int kk = 0; kk < K; kk++)
                if ((tri == Gemm.Triangle.LowerA && kk > i) || (tri == Gemm.Triangle.UpperA && kk < i)) a[i * lda + kk] = 0;
        var before = (float[])c.Clone();
        bool accumulate = tri != Gemm.Triangle.LowerC;
        fixed (float* pa = a, pb = b, pc = c) Gemm.MultiplySerial(pa, lda, pb, ldb, pc, ldc, I, K, J, accumulate, tri);
        for (int i = 0; i < I; i++)
            for (int j = 0; j < J; j++)
            {
                double s = accumulate ? before[i * ldc + j] : 0;
                for (int kk = 0; kk < K; kk++) s += (double)a[i * lda + kk] * b[kk * ldb + j];
                if (tri != Gemm.Triangle.LowerC || j <= i) Assert.Equal(s, c[i * ldc + j], 1e-4);
            }
        for (int i = 0; i < I; i++) for (int j = J; j < ldc; j++) Assert.Equal(before[i * ldc + j], c[i * ldc + j]); // strides respected
    }

    /// <summary>The whole model (embedding, norms, biased Q/K/V, RoPE, GQA attention, SwiGLU, output head) end to end.</summary>
    [Fact]
    public void WholeModelCrossEntropy()
    {
        var config = TrainModel.Qwen2Config(vocabSize: 23, dim: 64, layers: 2, heads: 4, kvHeads: 2, ffnDim: 64, context: 32);
        var m = new TrainModel(config);
        m.Initialize(5);
        // give norms and biases non-trivial values so their gradients are exercised
        var rng = new Xoshiro256(6);
        foreach (var p in m.Tensors)
            if (!p.IsMatrix) { var w = m.W(p); for (int i = 0; i < w.Length; i++) w[i] += 0.3f * rng.NextSignedFloat(); }
        using var pool = new ComputePool(1);
        var net = new Transformer(m, pool);
        var batch = new PackedBatch([[1, 4, 9, 16, 22, 3], [7, 7, 2, 11]]);
        var targets = LogProbs.Targets(batch, [2, 1]);
        SftTrainer.ForwardBackward(net, batch, targets);
        var analytic = (float[])m.Grads.Clone();

        double Loss()
        {
            net.Forward(batch);
            var logp = new float[batch.TokenCount];
            LogProbs.Compute(net.Logits, targets, config.VocabSize, logp);
            double s = 0; int c = 0;
            for (int t = 0; t < targets.Length; t++) if (targets[t] >= 0) { s -= logp[t]; c++; }
            return s / c;
        }

        var pick = new Xoshiro256(7);
        foreach (var p in m.Tensors)
        {
            // the largest gradient of each tensor and a few random entries
            var g = analytic.AsSpan((int)p.Offset, p.Length);
            int argmax = 0;
            for (int i = 1; i < g.Length; i++) if (Math.Abs(g[i]) > Math.Abs(g[argmax])) argmax = i;
            float scale = Math.Max(Math.Abs(g[argmax]), 1e-3f);
            foreach (int i in new[] { argmax, (int)(pick.Next() % (ulong)p.Length), (int)(pick.Next() % (ulong)p.Length) })
            {
                long at = p.Offset + i;
                float keep = m.Weights[at];
                const float h = 2e-3f;
                m.Weights[at] = keep + h; double plus = Loss();
                m.Weights[at] = keep - h; double minus = Loss();
                m.Weights[at] = keep;
                double numeric = (plus - minus) / (2 * h);
                Assert.True(Math.Abs(numeric - analytic[at]) <= 0.02 * scale + 2e-4,
                    $"{p.Name}[{i}]: numeric {numeric:G6} vs analytic {analytic[at]:G6}");
            }
        }
    }
}
