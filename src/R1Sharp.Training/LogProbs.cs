// The link between logits and every loss here: log π(token) per row, and its backward. SFT's cross-entropy and
// GRPO's policy loss are both L = Σ_t f(log π(y_t)); given g_t = ∂L/∂log π(y_t), ∂L/∂logits_t = g_t · (onehot(y_t) − softmax_t).
using System.Numerics.Tensors;

namespace R1Sharp.Training;

public static class LogProbs
{
    /// <summary>logp[t] = log softmax(logits_t)[targets[t]] for rows with targets[t] ≥ 0 (others get 0).</summary>
    public static void Compute(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, int vocab, Span<float> logp)
    {
        for (int t = 0; t < targets.Length; t++)
        {
            if (targets[t] < 0) { logp[t] = 0; continue; }
            var row = logits.Slice(t * vocab, vocab);
            float max = TensorPrimitives.Max(row);
            double sum = 0;
            foreach (float z in row) sum += Math.Exp(z - max);
            logp[t] = (float)(row[targets[t]] - max - Math.Log(sum));
        }
    }

    /// <summary>dlogits_t = g_t · (onehot(y_t) − softmax(logits_t)); rows with g_t = 0 or no target get zeros.</summary>
    public static void Backward(ReadOnlySpan<float> logits, ReadOnlySpan<int> targets, ReadOnlySpan<float> g, int vocab, Span<float> dlogits)
    {
        for (int t = 0; t < targets.Length; t++)
        {
            var d = dlogits.Slice(t * vocab, vocab);
            if (targets[t] < 0 || g[t] == 0) { d.Clear(); continue; }
            var row = logits.Slice(t * vocab, vocab);
            TensorPrimitives.SoftMax(row, d);
            TensorPrimitives.Multiply(d, -g[t], d);
            d[targets[t]] += g[t];
        }
    }

    /// <summary>Next-token targets of a packed batch: row t predicts row t+1 of the same sequence where
    /// <paramref name="trainFrom"/>[s] ≤ t+1 − Start[s] (the completion), else −1.</summary>
    public static int[] Targets(PackedBatch b, IReadOnlyList<int> trainFrom)
    {
        var targets = new int[b.TokenCount];
        Array.Fill(targets, -1);
        for (int s = 0; s < b.Count; s++)
            for (int t = Math.Max(0, trainFrom[s] - 1); t < b.Length[s] - 1; t++)
                targets[b.Start[s] + t] = b.Tokens[b.Start[s] + t + 1];
        return targets;
    }
}
