// Paired Forward/Backward functions for each layer type of the qwen2/llama decoder, on row-major F32 buffers of n
// tokens. Backward functions accumulate (+=) into parameter gradients and, where they say so, into input gradients.
// The forward steps mirror DecoderModel's arithmetic so trainer and engine agree on logits.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace R1Sharp.Training;

/// <summary>A packed batch: sequences laid end to end, token t of sequence s at row Start[s] + t, position t.</summary>
public sealed class PackedBatch
{
    public PackedBatch(IReadOnlyList<int[]> sequences)
    {
        Count = sequences.Count;
        Start = new int[Count];
        Length = new int[Count];
        int n = 0;
        for (int s = 0; s < Count; s++) { Start[s] = n; Length[s] = sequences[s].Length; n += sequences[s].Length; }
        Tokens = new int[n];
        Positions = new int[n];
        for (int s = 0; s < Count; s++)
            for (int t = 0; t < Length[s]; t++) { Tokens[Start[s] + t] = sequences[s][t]; Positions[Start[s] + t] = t; }
        ProbOffset = new long[Count];
        long p = 0;
        for (int s = 0; s < Count; s++) { ProbOffset[s] = p; p += (long)Length[s] * Length[s]; }
        ProbCount = p;
    }

    public int Count { get; }
    public int[] Start { get; }
    public int[] Length { get; }
    public int[] Tokens { get; }
    public int[] Positions { get; }
    /// <summary>Where sequence s's (T × T) attention probabilities of one head begin, in units of one head's block.</summary>
    public long[] ProbOffset { get; }
    /// <summary>Σ T² over the sequences.</summary>
    public long ProbCount { get; }
    public int TokenCount => Tokens.Length;
}

public static class RmsNormLayer
{
    /// <summary>y = x / sqrt(mean(x²) + eps) · w; rstd[t] keeps 1/sqrt(...) for backward.</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, Span<float> rstd, int n, int dim, float eps)
    {
        for (int t = 0; t < n; t++)
        {
            var row = x.Slice(t * dim, dim);
            double sum = 0;
            foreach (float f in row) sum += f * f;
            float scale = 1.0f / MathF.Sqrt((float)(sum / dim) + eps);
            rstd[t] = scale;
            var o = y.Slice(t * dim, dim);
            TensorPrimitives.Multiply(row, scale, o);
            TensorPrimitives.Multiply(o, w, o);
        }
    }

    /// <summary>dx += r·(dy⊙w) − x·r³/dim·Σ(dy⊙w⊙x); dw += Σ_t dy⊙x·r.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
                                Span<float> dx, Span<float> dw, int n, int dim)
    {
        BackwardInput(dy, x, w, rstd, dx, n, dim);
        BackwardWeight(dy, x, rstd, dw, n, dim, 0, dim);
    }

    /// <summary>dx += r·(dy⊙w) − x·r³/dim·Σ(dy⊙w⊙x), row by row.</summary>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> rstd,
                                     Span<float> dx, int n, int dim)
    {
        Span<float> dyw = dim <= 4096 ? stackalloc float[dim] : new float[dim];
        for (int t = 0; t < n; t++)
        {
            var dyr = dy.Slice(t * dim, dim);
            var xr = x.Slice(t * dim, dim);
            float r = rstd[t];
            TensorPrimitives.Multiply(dyr, w, dyw);
            float dot = TensorPrimitives.Dot(dyw, xr);
            float c = r * r * r * dot / dim;
            var dxr = dx.Slice(t * dim, dim);
            TensorPrimitives.MultiplyAdd(dyw, r, dxr, dxr);
            TensorPrimitives.MultiplyAdd(xr, -c, dxr, dxr);
        }
    }

    /// <summary>dw[i] += Σ_t dy[t, i]·x[t, i]·r[t] for columns [c0, c1), the tokens summed in order.</summary>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> rstd, Span<float> dw, int n, int dim, int c0, int c1)
    {
        for (int t = 0; t < n; t++)
        {
            float r = rstd[t];
            int o = t * dim;
            for (int i = c0; i < c1; i++) dw[i] += dy[o + i] * x[o + i] * r;
        }
    }
}

/// <summary>Rotary embeddings with a table of cos/sin per (position, pair), built as DecoderModel builds them.</summary>
public sealed class RopeTable
{
    private readonly float[] _cos, _sin;

    public RopeTable(int maxPositions, int ropeDim, float thetaBase)
    {
        Half = ropeDim / 2;
        _cos = new float[maxPositions * Half];
        _sin = new float[maxPositions * Half];
        float thetaScale = MathF.Pow(thetaBase, -2.0f / ropeDim);
        for (int pos = 0; pos < maxPositions; pos++)
        {
            float theta = pos;
            for (int i = 0; i < Half; i++)
            {
                _cos[pos * Half + i] = MathF.Cos(theta);
                _sin[pos * Half + i] = MathF.Sin(theta);
                theta *= thetaScale;
            }
        }
        MaxPositions = maxPositions;
    }

    public int Half { get; }
    public int MaxPositions { get; }

    /// <summary>Rotates each head of each row by its position (inverse = rotate by −θ, which is backward).</summary>
    public void Apply(Span<float> x, int n, int nHeads, int headDim, ReadOnlySpan<int> positions, bool neox, bool inverse)
    {
        int width = nHeads * headDim;
        for (int t = 0; t < n; t++)
        {
            int p = positions[t] * Half;
            for (int h = 0; h < nHeads; h++)
            {
                var v = x.Slice(t * width + h * headDim, headDim);
                for (int i = 0; i < Half; i++)
                {
                    int a = neox ? i : 2 * i, b = neox ? i + Half : 2 * i + 1;
                    float cos = _cos[p + i], sin = inverse ? -_sin[p + i] : _sin[p + i];
                    float x0 = v[a], x1 = v[b];
                    v[a] = x0 * cos - x1 * sin;
                    v[b] = x0 * sin + x1 * cos;
                }
            }
        }
    }
}

public static unsafe class SwiGluLayer
{
    /// <summary>h = silu(g) ⊙ u, silu(g) = g·σ(g).</summary>
    public static void Forward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        if (Vector512.IsHardwareAccelerated && h.Length >= Vector512<float>.Count)
        {
            // one pass with the operations (and roundings) of the three below: σ as TensorPrimitives computes it on
            // Vector512, which it uses for every element of a span of 16 or more (the last vector overlapping)
            fixed (float* pg = g, pu = u, ph = h)
            {
                int n = h.Length;
                for (int i = 0; ; i += 16)
                {
                    if (i + 16 > n) i = n - 16;
                    var x = Vector512.Load(pg + i);
                    (Sigmoid(x) * x * Vector512.Load(pu + i)).Store(ph + i);
                    if (i + 16 == n) break;
                }
            }
            return;
        }
        TensorPrimitives.Sigmoid(g, h);
        TensorPrimitives.Multiply(h, g, h);
        TensorPrimitives.Multiply(h, u, h);
    }

    /// <summary>dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = dh ⊙ silu(g) (overwritten, not accumulated).</summary>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du)
    {
        if (Vector512.IsHardwareAccelerated && dg.Length >= Vector512<float>.Count)
        {
            // one pass with the operations of the eight below, in their order (outputs apart from inputs, so an
            // overlapping last vector recomputes the same values)
            fixed (float* pdh = dh, pg = g, pu = u, pdg = dg, pdu = du)
            {
                int n = dg.Length;
                for (int i = 0; ; i += 16)
                {
                    if (i + 16 > n) i = n - 16;
                    var x = Vector512.Load(pg + i);
                    var s = Sigmoid(x);
                    var d = Vector512.Load(pdh + i);
                    (((x * (Vector512<float>.One - s) + Vector512<float>.One) * s) * Vector512.Load(pu + i) * d).Store(pdg + i);
                    (s * x * d).Store(pdu + i);
                    if (i + 16 == n) break;
                }
            }
            return;
        }
        TensorPrimitives.Sigmoid(g, du);                // s
        TensorPrimitives.Subtract(1f, du, dg);          // 1 − s
        TensorPrimitives.MultiplyAdd(g, dg, 1f, dg);    // 1 + g(1 − s)
        TensorPrimitives.Multiply(dg, du, dg);
        TensorPrimitives.Multiply(dg, u, dg);
        TensorPrimitives.Multiply(dg, dh, dg);
        TensorPrimitives.Multiply(du, g, du);           // silu(g)
        TensorPrimitives.Multiply(du, dh, du);
    }

    /// <summary>σ(x) = 1/(1 + e^−x), as TensorPrimitives.Sigmoid computes it on Vector512.</summary>
    private static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Vector512.Exp(-x));
}

/// <summary>
/// Causal softmax attention with grouped KV heads over a packed batch, one (sequence, KV head) per work item. Each head's
/// scores, weighted values and their gradients are matrix products (Gemm.MultiplySerial) that skip the masked triangle.
/// </summary>
public static unsafe class AttentionLayer
{
    public readonly record struct Shape(int Heads, int KvHeads, int HeadDim)
    {
        public int QDim => Heads * HeadDim;
        public int KDim => KvHeads * HeadDim;
        public int Group => Heads / KvHeads;
        public float Scale => 1.0f / MathF.Sqrt(HeadDim);
    }

    /// <summary>Per-thread scratch (transposed K or V, and two T × T blocks), grown to the longest sequence seen.</summary>
    [ThreadStatic] private static float[]? t_scratch;

    private static float[] Scratch(long count)
    {
        var s = t_scratch;
        if (s == null || s.Length < count) t_scratch = s = GC.AllocateUninitializedArray<float>(checked((int)count), pinned: true);
        return s;
    }

    /// <summary>att[t, h] = Σ_s≤t P[h, t, s] · v[s, h/group], P = softmax(q·kᵀ·scale); P saved at probs[(ProbOffset[s]·Heads + h·T²)],
    /// row t up to the end of its block of four rows (zero above the diagonal): what backward reads.</summary>
    public static void Forward(PackedBatch b, Shape sh, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
                               Span<float> att, Span<float> probs, int item)
    {
        int s = item / sh.KvHeads, kvh = item % sh.KvHeads;
        int T = b.Length[s], r0 = b.Start[s], hd = sh.HeadDim;
        // the scores are made and normalized in cache-sized scratch, then only the live rows' parts are copied out
        var scratch = Scratch((long)hd * T + (long)T * T);
        fixed (float* pq = q, pk = k, pv = v, pa = att, pp = probs, kt = scratch)
        {
            float* S = kt + (long)hd * T;
            float* k0 = pk + (long)r0 * sh.KDim + kvh * hd, v0 = pv + (long)r0 * sh.KDim + kvh * hd;
            // kt: (headDim, T)
            Gemm.TransposeSerial(k0, sh.KDim, kt, T, T, hd);
            for (int h = kvh * sh.Group; h < (kvh + 1) * sh.Group; h++)
            {
                float* P = pp + b.ProbOffset[s] * sh.Heads + (long)h * T * T;
                float* q0 = pq + (long)r0 * sh.QDim + h * hd;
                // scores: (T, T) = q·kᵀ, the causal half
                Gemm.MultiplySerial(q0, sh.QDim, kt, T, S, T, T, hd, T, accumulate: false, Gemm.Triangle.LowerC);
                for (int t = 0; t < T; t++)
                {
                    // columns up to the end of row t's block of four: those the products below read
                    int width = Math.Min(T, (t & ~3) + 4);
                    var row = new Span<float>(S + (long)t * T, width);
                    row[(t + 1)..].Clear();
                    if (Vector512.IsHardwareAccelerated && t + 1 >= Vector512<float>.Count) SoftmaxRow(S + (long)t * T, t + 1, sh.Scale);
                    else
                    {
                        var live = row[..(t + 1)];
                        TensorPrimitives.Multiply(live, sh.Scale, live);
                        float max = TensorPrimitives.Max(live);
                        TensorPrimitives.Subtract(live, max, live);
                        TensorPrimitives.Exp(live, live);
                        TensorPrimitives.Multiply(live, 1f / TensorPrimitives.Sum(live), live);
                    }
                    row.CopyTo(new Span<float>(P + (long)t * T, width));
                }
                // att rows of head h: (T, headDim) = P·v
                Gemm.MultiplySerial(S, T, v0, sh.KDim, pa + (long)r0 * sh.QDim + h * hd, sh.QDim, T, T, hd, accumulate: false, Gemm.Triangle.LowerA);
            }
        }
    }

    /// <summary>
    /// x = softmax(x·scale) for n ≥ 16 in place, with the float operations of TensorPrimitives' Multiply, Max, Subtract,
    /// Exp, Sum and Multiply on Vector512 (which they use for every element of such a span), in two passes and the sum
    /// instead of six: the scaled maximum, then e^(x·scale − max), then the sum (TensorPrimitives', for its order), then
    /// the normalization. The last vector overlaps the one before; its lanes done already are kept.
    /// </summary>
    private static void SoftmaxRow(float* x, int n, float scale)
    {
        var vs = Vector512.Create(scale);
        var mx = Vector512.Create(float.NegativeInfinity);
        int i = 0;
        for (; i + 16 <= n; i += 16) mx = Vector512.Max(mx, Vector512.Load(x + i) * vs);
        if (i < n) mx = Vector512.Max(mx, Vector512.Load(x + n - 16) * vs);
        float* lanes = stackalloc float[16];
        mx.Store(lanes);
        var vm = Vector512.Create(TensorPrimitives.Max(new ReadOnlySpan<float>(lanes, 16)));
        int last = n - 16;
        var fresh = Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(i - last)).AsSingle(); // lanes of the last vector not done yet
        for (i = 0; i + 16 <= n; i += 16) Vector512.Exp(Vector512.Load(x + i) * vs - vm).Store(x + i);
        if (i < n) Vector512.ConditionalSelect(fresh, Vector512.Exp(Vector512.Load(x + last) * vs - vm), Vector512.Load(x + last)).Store(x + last);
        var inv = Vector512.Create(1f / TensorPrimitives.Sum(new ReadOnlySpan<float>(x, n)));
        for (i = 0; i + 16 <= n; i += 16) (Vector512.Load(x + i) * inv).Store(x + i);
        if (i < n) Vector512.ConditionalSelect(fresh, Vector512.Load(x + last) * inv, Vector512.Load(x + last)).Store(x + last);
    }

    /// <summary>d[i] = ((d[i] − pdp)·p[i])·scale in one pass: the three elementwise steps, each rounded as before.</summary>
    private static void SoftmaxBackwardRow(float* d, float* p, int n, float pdp, float scale)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vp = Vector512.Create(pdp);
            var vs = Vector512.Create(scale);
            for (; i + 16 <= n; i += 16) ((Vector512.Load(d + i) - vp) * Vector512.Load(p + i) * vs).Store(d + i);
        }
        for (; i < n; i++) d[i] = (d[i] - pdp) * p[i] * scale;
    }

    /// <summary>dq (overwritten), dk and dv (overwritten for this item's rows and KV head) from datt.</summary>
    public static void Backward(PackedBatch b, Shape sh, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
                                ReadOnlySpan<float> probs, ReadOnlySpan<float> datt, Span<float> dq, Span<float> dk, Span<float> dv, int item)
    {
        int s = item / sh.KvHeads, kvh = item % sh.KvHeads;
        int T = b.Length[s], r0 = b.Start[s], hd = sh.HeadDim;
        long tt = (long)T * T;
        var scratch = Scratch(tt + (long)hd * T);
        fixed (float* pq = q, pk = k, pv = v, pp = probs, pdo = datt, pdq = dq, pdk = dk, pdv = dv, sc = scratch)
        {
            float* dP = sc, vt = sc + tt;
            float* k0 = pk + (long)r0 * sh.KDim + kvh * hd, v0 = pv + (long)r0 * sh.KDim + kvh * hd;
            float* dk0 = pdk + (long)r0 * sh.KDim + kvh * hd, dv0 = pdv + (long)r0 * sh.KDim + kvh * hd;
            for (int t = 0; t < T; t++)
            {
                new Span<float>(dk0 + (long)t * sh.KDim, hd).Clear();
                new Span<float>(dv0 + (long)t * sh.KDim, hd).Clear();
            }
            // vt: (headDim, T)
            Gemm.TransposeSerial(v0, sh.KDim, vt, T, T, hd);
            for (int h = kvh * sh.Group; h < (kvh + 1) * sh.Group; h++)
            {
                float* P = pp + b.ProbOffset[s] * sh.Heads + (long)h * T * T;
                float* q0 = pq + (long)r0 * sh.QDim + h * hd, dO = pdo + (long)r0 * sh.QDim + h * hd, dq0 = pdq + (long)r0 * sh.QDim + h * hd;
                // dv += Pᵀ·dout
                Gemm.MultiplySerialTransposedA(P, T, dO, sh.QDim, dv0, sh.KDim, T, T, hd, accumulate: true, Gemm.Triangle.UpperA);
                // dP = dout·vᵀ (causal half); dS = P ⊙ (dP − Σ P·dP)·scale, zero above the diagonal
                Gemm.MultiplySerial(dO, sh.QDim, vt, T, dP, T, T, hd, T, accumulate: false, Gemm.Triangle.LowerC);
                for (int t = 0; t < T; t++)
                {
                    float* pr = P + (long)t * T, row = dP + (long)t * T;
                    float pdp = TensorPrimitives.Dot(new ReadOnlySpan<float>(pr, t + 1), new ReadOnlySpan<float>(row, t + 1));
                    SoftmaxBackwardRow(row, pr, t + 1, pdp, sh.Scale);
                    new Span<float>(row + t + 1, T - t - 1).Clear();
                }
                // dq = dS·k; dk += dSᵀ·q
                Gemm.MultiplySerial(dP, T, k0, sh.KDim, dq0, sh.QDim, T, T, hd, accumulate: false, Gemm.Triangle.LowerA);
                Gemm.MultiplySerialTransposedA(dP, T, q0, sh.QDim, dk0, sh.KDim, T, T, hd, accumulate: true, Gemm.Triangle.UpperA);
            }
        }
    }
}
