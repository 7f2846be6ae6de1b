// Paired Forward/Backward functions for each layer type of the qwen2/llama decoder, on row-major F32 buffers of n
// tokens. Backward functions accumulate (+=) into parameter gradients and, where they say so, into input gradients.
// The forward steps mirror DecoderModel's arithmetic so trainer and engine agree on logits.
using System.Numerics.Tensors;

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
            for (int i = 0; i < dim; i++) dw[i] += dyr[i] * xr[i] * r;
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

public static class SwiGluLayer
{
    /// <summary>h = silu(g) ⊙ u, silu(g) = g / (1 + e^−g).</summary>
    public static void Forward(ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> h)
    {
        for (int i = 0; i < h.Length; i++) h[i] = g[i] / (1.0f + MathF.Exp(-g[i])) * u[i];
    }

    /// <summary>dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))), du = dh ⊙ silu(g) (overwritten, not accumulated).</summary>
    public static void Backward(ReadOnlySpan<float> dh, ReadOnlySpan<float> g, ReadOnlySpan<float> u, Span<float> dg, Span<float> du)
    {
        for (int i = 0; i < dh.Length; i++)
        {
            float s = 1.0f / (1.0f + MathF.Exp(-g[i]));
            du[i] = dh[i] * g[i] * s;
            dg[i] = dh[i] * u[i] * s * (1 + g[i] * (1 - s));
        }
    }
}

/// <summary>Causal softmax attention with grouped KV heads over a packed batch, one (sequence, KV head) per work item.</summary>
public static class AttentionLayer
{
    public readonly record struct Shape(int Heads, int KvHeads, int HeadDim)
    {
        public int QDim => Heads * HeadDim;
        public int KDim => KvHeads * HeadDim;
        public int Group => Heads / KvHeads;
        public float Scale => 1.0f / MathF.Sqrt(HeadDim);
    }

    /// <summary>att[t, h] = Σ_s≤t P[h, t, s] · v[s, h/group], P = softmax(q·kᵀ·scale); P saved at probs[(ProbOffset[s]·Heads + h·T²)].</summary>
    public static void Forward(PackedBatch b, Shape sh, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
                               Span<float> att, Span<float> probs, int item)
    {
        int s = item / sh.KvHeads, kvh = item % sh.KvHeads;
        int T = b.Length[s], r0 = b.Start[s];
        for (int h = kvh * sh.Group; h < (kvh + 1) * sh.Group; h++)
        {
            var P = probs.Slice((int)(b.ProbOffset[s] * sh.Heads + (long)h * T * T), T * T);
            for (int t = 0; t < T; t++)
            {
                var qt = q.Slice((r0 + t) * sh.QDim + h * sh.HeadDim, sh.HeadDim);
                var row = P.Slice(t * T, T);
                float max = float.NegativeInfinity;
                for (int p = 0; p <= t; p++)
                {
                    float sc = TensorPrimitives.Dot(qt, k.Slice((r0 + p) * sh.KDim + kvh * sh.HeadDim, sh.HeadDim)) * sh.Scale;
                    row[p] = sc;
                    if (sc > max) max = sc;
                }
                double sum = 0;
                for (int p = 0; p <= t; p++) { float e = MathF.Exp(row[p] - max); row[p] = e; sum += e; }
                float inv = (float)(1.0 / sum);
                var o = att.Slice((r0 + t) * sh.QDim + h * sh.HeadDim, sh.HeadDim);
                o.Clear();
                for (int p = 0; p <= t; p++)
                {
                    row[p] *= inv;
                    TensorPrimitives.MultiplyAdd(v.Slice((r0 + p) * sh.KDim + kvh * sh.HeadDim, sh.HeadDim), row[p], o, o);
                }
            }
        }
    }

    /// <summary>dq (overwritten), dk and dv (overwritten for this item's rows and KV head) from datt.</summary>
    public static void Backward(PackedBatch b, Shape sh, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
                                ReadOnlySpan<float> probs, ReadOnlySpan<float> datt, Span<float> dq, Span<float> dk, Span<float> dv, int item)
    {
        int s = item / sh.KvHeads, kvh = item % sh.KvHeads;
        int T = b.Length[s], r0 = b.Start[s], hd = sh.HeadDim;
        for (int t = 0; t < T; t++)
        {
            dk.Slice((r0 + t) * sh.KDim + kvh * hd, hd).Clear();
            dv.Slice((r0 + t) * sh.KDim + kvh * hd, hd).Clear();
        }
        Span<float> dp = T <= 2048 ? stackalloc float[T] : new float[T];
        for (int h = kvh * sh.Group; h < (kvh + 1) * sh.Group; h++)
        {
            var P = probs.Slice((int)(b.ProbOffset[s] * sh.Heads + (long)h * T * T), T * T);
            for (int t = 0; t < T; t++)
            {
                var row = P.Slice(t * T, t + 1);
                var dout = datt.Slice((r0 + t) * sh.QDim + h * hd, hd);
                var qt = q.Slice((r0 + t) * sh.QDim + h * hd, hd);
                var dqt = dq.Slice((r0 + t) * sh.QDim + h * hd, hd);
                dqt.Clear();
                // dP[p] = dout · v_p; dv_p += P[p] · dout
                for (int p = 0; p <= t; p++)
                {
                    int kv = (r0 + p) * sh.KDim + kvh * hd;
                    dp[p] = TensorPrimitives.Dot(dout, v.Slice(kv, hd));
                    var dvp = dv.Slice(kv, hd);
                    TensorPrimitives.MultiplyAdd(dout, row[p], dvp, dvp);
                }
                // dS = P ⊙ (dP − Σ P·dP); dq += scale·dS·k, dk += scale·dS·q
                float pdp = TensorPrimitives.Dot(row, dp.Slice(0, t + 1));
                for (int p = 0; p <= t; p++)
                {
                    float ds = row[p] * (dp[p] - pdp) * sh.Scale;
                    int kv = (r0 + p) * sh.KDim + kvh * hd;
                    TensorPrimitives.MultiplyAdd(k.Slice(kv, hd), ds, dqt, dqt);
                    var dkp = dk.Slice(kv, hd);
                    TensorPrimitives.MultiplyAdd(qt, ds, dkp, dkp);
                }
            }
        }
    }
}
