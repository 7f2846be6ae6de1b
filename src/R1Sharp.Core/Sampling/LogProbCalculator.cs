// The log probabilities a request asks for (the API's logprobs): the log-softmax of the distribution a token was
// drawn from, after the penalties, the grammar's mask (the caller masks the row) and the temperature, before the
// top-k/top-p/min-p truncation, so a token's figure does not depend on where a cut fell. Temperature 0 (greedy)
// reports the distribution at temperature 1, whose most likely token is the greedy pick.
namespace R1Sharp.Sampling;

/// <summary>A token and its log probability.</summary>
public readonly record struct TokenLogProb(int Token, float LogProb);

/// <summary>One per sequence (it reuses its buffers): the log probability of the sampled token and the most likely ones.</summary>
public sealed class LogProbCalculator
{
    /// <summary>Most alternatives a request may ask for (OpenAI's top_logprobs bound).</summary>
    public const int MaxTop = 20;

    private readonly Candidates _c = new();
    private readonly PenaltyStep _penalty;
    private readonly TemperatureStep? _temperature;
    private readonly int _top;

    public LogProbCalculator(SamplingParams p, int top)
    {
        if (top < 0 || top > MaxTop) throw new ArgumentException($"the number of top log probabilities must be between 0 and {MaxTop} (got {top})");
        _penalty = new PenaltyStep(p.RepetitionPenalty, p.PresencePenalty, p.FrequencyPenalty, p.RepeatLastN);
        _temperature = p.Temperature is > 0 and not 1 ? new TemperatureStep(p.Temperature) : null;
        _top = top;
    }

    /// <summary>
    /// The log probability of <paramref name="token"/> in the row <paramref name="logits"/> (masked tokens at -infinity)
    /// after the penalties over <paramref name="history"/> and the temperature, and the <c>top</c> most likely tokens, most likely first.
    /// </summary>
    public (float LogProb, TokenLogProb[] Top) Compute(ReadOnlySpan<float> logits, ReadOnlySpan<int> history, int token)
    {
        _c.Load(logits);
        // the same steps, in the same order, as the sampler applies before truncating
        _penalty.Apply(_c, history);
        _temperature?.Apply(_c, history);
        var l = _c.Logits.AsSpan(0, _c.Count);
        float max = float.NegativeInfinity;
        foreach (float v in l) if (v > max) max = v;
        double sum = 0;
        foreach (float v in l) if (v > float.NegativeInfinity) sum += Math.Exp(v - max); // NaN fails the test and is skipped
        float lse = max + (float)Math.Log(sum);
        var top = new TokenLogProb[Math.Min(_top, l.Length)];
        int n = 0;
        for (int i = 0; i < l.Length; i++)
        {
            float v = l[i];
            if (!(v > float.NegativeInfinity)) continue;
            if (n == top.Length && (n == 0 || v <= top[n - 1].LogProb)) continue;
            // insertion into the descending list; equal values keep the lower id first
            int at = n < top.Length ? n++ : n - 1;
            while (at > 0 && top[at - 1].LogProb < v) { top[at] = top[at - 1]; at--; }
            top[at] = new TokenLogProb(i, v);
        }
        for (int i = 0; i < n; i++) top[i] = top[i] with { LogProb = top[i].LogProb - lse };
        return (l[token] - lse, n == top.Length ? top : top[..n]);
    }
}
