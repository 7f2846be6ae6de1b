// The sampler chain: small steps applied in order to a candidate list, then a seeded draw.
// Order (as vLLM and Hugging Face apply them): penalties, temperature, top-k, top-p, min-p, draw.
// Temperature 0 is greedy: the highest logit after penalties.
// Speculative decoding verifies a draft token through the same chain (Verify): the token that comes out is distributed
// exactly as Sample's, whatever the draft proposed.
using System.Numerics.Tensors;

namespace R1Sharp.Sampling;

public sealed record SamplingParams
{
    public float Temperature { get; init; } = 0.6f;
    /// <summary>Keep the K most likely tokens; 0 keeps all.</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set whose probability reaches P; 1 keeps all.</summary>
    public float TopP { get; init; } = 1.0f;
    /// <summary>Drop tokens less likely than MinP times the most likely one; 0 keeps all.</summary>
    public float MinP { get; init; }
    /// <summary>CTRL-style penalty on tokens seen in the last RepeatLastN: positive logits divided, negative multiplied.</summary>
    public float RepetitionPenalty { get; init; } = 1.0f;
    /// <summary>Subtracted once from the logit of every token already generated (OpenAI presence_penalty).</summary>
    public float PresencePenalty { get; init; }
    /// <summary>Subtracted per occurrence of a token already generated (OpenAI frequency_penalty).</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>How many recent tokens the penalties look at; -1 for all.</summary>
    public int RepeatLastN { get; init; } = 64;
    public ulong Seed { get; init; } = 42;

    public static SamplingParams Greedy { get; } = new() { Temperature = 0 };

    /// <summary>Throws ArgumentException with a one-line cause for values out of range.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature must be >= 0 (got {Temperature})");
        if (TopK < 0) throw new ArgumentException($"top-k must be >= 0 (got {TopK})");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1] (got {TopP})");
        if (!(MinP >= 0 && MinP <= 1)) throw new ArgumentException($"min-p must be in [0, 1] (got {MinP})");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw new ArgumentException($"repetition penalty must be > 0 (got {RepetitionPenalty})");
        if (!float.IsFinite(PresencePenalty) || !float.IsFinite(FrequencyPenalty)) throw new ArgumentException("penalties must be finite");
    }
}

/// <summary>Token ids with their logits (later probabilities); steps shrink or reorder it.</summary>
public sealed class Candidates
{
    public int[] Ids = [];
    public float[] Logits = [];
    public int Count;
    /// <summary>True once sorted by descending logit.</summary>
    public bool Sorted;

    public void Load(ReadOnlySpan<float> logits)
    {
        if (Ids.Length < logits.Length)
        {
            Ids = new int[logits.Length];
            Logits = new float[logits.Length];
        }
        for (int i = 0; i < logits.Length; i++) Ids[i] = i;
        logits.CopyTo(Logits);
        Count = logits.Length;
        Sorted = false;
    }

    /// <summary>
    /// Loads only the tokens whose bit is set in <paramref name="allowed"/> (bit t of word t/64), in id order: the
    /// candidates of the row with every other logit at -infinity, less those tokens, whose probability is 0 (so every
    /// step, and the draw, see the same distribution at a fraction of the cost when few tokens are allowed).
    /// </summary>
    public void Load(ReadOnlySpan<float> logits, ReadOnlySpan<ulong> allowed)
    {
        if (Ids.Length < logits.Length)
        {
            Ids = new int[logits.Length];
            Logits = new float[logits.Length];
        }
        int n = 0;
        for (int w = 0; w < allowed.Length; w++)
        {
            ulong bits = allowed[w];
            while (bits != 0)
            {
                int t = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                if (t >= logits.Length) break;
                Ids[n] = t;
                Logits[n++] = logits[t];
                bits &= bits - 1;
            }
        }
        Count = n;
        Sorted = false;
    }

    public void Sort()
    {
        if (Sorted) return;
        Array.Sort(Logits, Ids, 0, Count, DescendingComparer.Instance);
        Sorted = true;
    }

    /// <summary>Sorts only when needed to find the top <paramref name="k"/>.</summary>
    public void KeepTop(int k)
    {
        if (k <= 0 || k >= Count) return;
        Sort();
        Count = k;
    }

    /// <summary>Softmax probabilities of the current candidates (max subtracted), in a new array.</summary>
    public float[] Probabilities() => Probabilities(new float[Count]);

    /// <summary>Softmax probabilities of the current candidates into <paramref name="p"/> (at least Count long).</summary>
    internal float[] Probabilities(float[] p)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < Count; i++) max = MathF.Max(max, Logits[i]);
        double sum = 0;
        for (int i = 0; i < Count; i++) { p[i] = MathF.Exp(Logits[i] - max); sum += p[i]; }
        for (int i = 0; i < Count; i++) p[i] = (float)(p[i] / sum);
        return p;
    }

    private sealed class DescendingComparer : IComparer<float>
    {
        public static readonly DescendingComparer Instance = new();
        public int Compare(float a, float b) => b.CompareTo(a);
    }
}

public interface ISamplerStep
{
    void Apply(Candidates c, ReadOnlySpan<int> history);
}

public sealed class PenaltyStep(float repetition, float presence, float frequency, int lastN) : ISamplerStep
{
    private readonly Dictionary<int, int> _counts = new();

    public void Apply(Candidates c, ReadOnlySpan<int> history)
    {
        if (repetition == 1 && presence == 0 && frequency == 0) return;
        var recent = lastN < 0 || lastN >= history.Length ? history : history[^lastN..];
        _counts.Clear();
        foreach (int id in recent) _counts[id] = _counts.GetValueOrDefault(id) + 1;
        // candidates are still indexed by id unless a step reordered them
        for (int i = 0; i < c.Count; i++)
        {
            if (!_counts.TryGetValue(c.Ids[i], out int n)) continue;
            float l = c.Logits[i];
            l = l > 0 ? l / repetition : l * repetition;
            c.Logits[i] = l - presence - frequency * n;
        }
    }
}

public sealed class TemperatureStep(float temperature) : ISamplerStep
{
    public void Apply(Candidates c, ReadOnlySpan<int> history)
    {
        for (int i = 0; i < c.Count; i++) c.Logits[i] /= temperature;
    }
}

public sealed class TopKStep(int k) : ISamplerStep
{
    public void Apply(Candidates c, ReadOnlySpan<int> history) => c.KeepTop(k);
}

public sealed class TopPStep(float p) : ISamplerStep
{
    private float[] _probs = [];

    public void Apply(Candidates c, ReadOnlySpan<int> history)
    {
        if (p >= 1) return;
        c.Sort();
        if (_probs.Length < c.Count) _probs = new float[c.Ids.Length];
        var probs = c.Probabilities(_probs);
        double cum = 0;
        for (int i = 0; i < c.Count; i++)
        {
            cum += probs[i];
            if (cum >= p) { c.Count = i + 1; return; }
        }
    }
}

public sealed class MinPStep(float minP) : ISamplerStep
{
    public void Apply(Candidates c, ReadOnlySpan<int> history)
    {
        if (minP <= 0) return;
        c.Sort();
        // p_i >= minP * p_max  <=>  logit_i >= logit_max + ln(minP)
        float threshold = c.Logits[0] + MathF.Log(minP);
        int keep = 1;
        while (keep < c.Count && c.Logits[keep] >= threshold) keep++;
        c.Count = keep;
    }
}

/// <summary>A full chain built from <see cref="SamplingParams"/>; one instance per sequence (it holds the RNG).</summary>
public sealed class Sampler
{
    private readonly List<ISamplerStep> _steps = new();
    /// <summary>Steps from this index on only cut or reorder the candidates (top-k, top-p, min-p); those before change logits one by one.</summary>
    private readonly int _firstCut;
    private readonly Candidates _candidates = new();
    /// <summary>Candidates the last full chain loaded (the row's length), all still held in the order the chain left them; -1 when not.</summary>
    private int _rowCount = -1;
    private float[] _probs = [];
    private readonly bool _greedy;
    /// <summary>Greedy with no penalties: the token is the first index of the largest logit, found without copying them.</summary>
    private readonly bool _argmax;
    private Xoshiro256 _rng;

    public Sampler(SamplingParams p)
    {
        p.Validate();
        Params = p;
        _greedy = p.Temperature == 0;
        _argmax = _greedy && p.RepetitionPenalty == 1 && p.PresencePenalty == 0 && p.FrequencyPenalty == 0;
        _steps.Add(new PenaltyStep(p.RepetitionPenalty, p.PresencePenalty, p.FrequencyPenalty, p.RepeatLastN));
        if (!_greedy)
        {
            _steps.Add(new TemperatureStep(p.Temperature));
        }
        _firstCut = _steps.Count;
        if (!_greedy)
        {
            _steps.Add(new TopKStep(p.TopK));
            _steps.Add(new TopPStep(p.TopP));
            _steps.Add(new MinPStep(p.MinP));
        }
        _rng = new Xoshiro256(p.Seed);
    }

    public SamplingParams Params { get; }

    /// <summary>Picks the next token from one row of logits; <paramref name="history"/> is what the sequence holds so far.</summary>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        if (_argmax && logits.Length > 0)
        {
            // IndexOfMax points at a NaN when the row has one: then the candidate loop, which skips NaNs, decides
            int best = TensorPrimitives.IndexOfMax(logits);
            _rowCount = -1;
            if (!float.IsNaN(logits[best])) return best;
        }
        Chain(logits, history);
        var c = _candidates;
        if (_greedy) return c.Ids[Best(c)];
        return Draw(c, Probabilities(c));
    }

    /// <summary>
    /// After <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int})"/> on the same <paramref name="logits"/> and
    /// <paramref name="history"/> drew a token the grammar refuses: the draw of
    /// <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int}, ReadOnlySpan{ulong})"/> (the chain over the allowed
    /// tokens, seed for seed the chain over the masked row), reusing the first chain's work. The penalties and the
    /// temperature change each logit alone, and the first chain's sort, if it made one, ordered the whole row: the
    /// allowed tokens, taken from that order, are the allowed set already through those steps and sorted. Only the
    /// cuts (top-k, top-p, min-p) and the draw run again, in one pass over the row and none of them sorts.
    /// </summary>
    public int Redraw(ReadOnlySpan<float> logits, ReadOnlySpan<int> history, ReadOnlySpan<ulong> allowed)
    {
        var c = _candidates;
        int n = _rowCount;
        _rowCount = -1;
        if (_argmax)
        {
            // the first index of the largest allowed logit, as IndexOfMax over the masked row
            c.Load(logits, allowed);
            return c.Count == 0 ? Sample(logits, history) : c.Ids[Best(c)];
        }
        if (n != logits.Length) return Sample(logits, history, allowed);
        var ids = c.Ids;
        var ls = c.Logits;
        int kept = 0;
        for (int i = 0; i < n; i++)
        {
            int t = ids[i];
            if ((uint)(t >> 6) < (uint)allowed.Length && (allowed[t >> 6] >> (t & 63) & 1) != 0)
            {
                ids[kept] = t;
                ls[kept++] = ls[i];
            }
        }
        if (kept == 0) return Sample(logits, history);
        c.Count = kept;
        for (int s = _firstCut; s < _steps.Count; s++) _steps[s].Apply(c, history);
        if (_greedy) return c.Ids[Best(c)];
        return Draw(c, Probabilities(c));
    }

    private float[] Probabilities(Candidates c)
    {
        if (_probs.Length < c.Count) _probs = new float[c.Ids.Length];
        return c.Probabilities(_probs);
    }

    /// <summary>
    /// As <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int})"/> on <paramref name="logits"/> with every token
    /// not in <paramref name="allowed"/> (bit t of word t/64) at -infinity, with the same draws from the same seed
    /// (tokens of equal logit aside, which an unstable sort may order either way), but the chain runs over the allowed
    /// tokens alone: a grammar that allows a few hundred of 151k tokens no longer costs a sort of the whole vocabulary.
    /// With no token allowed, the whole row decides, as Sample.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history, ReadOnlySpan<ulong> allowed)
    {
        if (_argmax) return Sample(logits, history);
        var c = _candidates;
        _rowCount = -1;
        c.Load(logits, allowed);
        if (c.Count == 0) return Sample(logits, history);
        foreach (var step in _steps) step.Apply(c, history);
        if (_greedy) return c.Ids[Best(c)];
        return Draw(c, Probabilities(c));
    }

    /// <summary>
    /// As <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int})"/>, and records in <paramref name="q"/> the
    /// distribution the token was drawn from (greedy: all its mass on the token): a draft's q for <see cref="Verify"/>.
    /// </summary>
    public int Sample(ReadOnlySpan<float> logits, ReadOnlySpan<int> history, TokenDistribution q)
    {
        Chain(logits, history);
        var c = _candidates;
        if (_greedy)
        {
            int id = c.Ids[Best(c)];
            q.SetPointMass(id);
            return id;
        }
        var probs = Probabilities(c);
        q.Set(c.Ids.AsSpan(0, c.Count), probs);
        return Draw(c, probs);
    }

    /// <summary>
    /// Speculative verification of one position: the token the sequence goes on with, given a draft token
    /// <paramref name="draft"/> that was drawn from <paramref name="q"/> (null: chosen without randomness, all of q's
    /// mass on it). Accepted (returned) with probability min(1, p/q), else a token drawn from norm(max(0, p − q)),
    /// where p is the distribution <see cref="Sample(ReadOnlySpan{float}, ReadOnlySpan{int})"/> draws from: so the
    /// result is distributed as Sample's (Leviathan et al. 2023, Chen et al. 2023). With a point-mass draft this is
    /// sampling from p and matching the draft (llama.cpp's rule), which uses the random stream exactly as Sample does:
    /// the same seed gives the same tokens with and without speculation. Greedy: the argmax, as Sample.
    /// </summary>
    public int Verify(ReadOnlySpan<float> logits, ReadOnlySpan<int> history, int draft, TokenDistribution? q)
    {
        if (_greedy || q is null || q.IsPointMass) return Sample(logits, history);
        Chain(logits, history);
        var c = _candidates;
        var p = Probabilities(c);
        // q densely over the vocabulary for the residual; cleared again below
        if (_dense.Length < logits.Length) _dense = new float[logits.Length];
        q.Scatter(_dense);
        float px = 0;
        for (int i = 0; i < c.Count; i++) if (c.Ids[i] == draft) { px = p[i]; break; }
        float qx = (uint)draft < (uint)_dense.Length ? _dense[draft] : 0;
        int result;
        if (qx > 0 && _rng.NextDouble() * qx < px)
        {
            result = draft;
        }
        else
        {
            double sum = 0;
            for (int i = 0; i < c.Count; i++)
            {
                p[i] = MathF.Max(0, p[i] - _dense[c.Ids[i]]);
                sum += p[i];
            }
            if (sum > 0)
            {
                for (int i = 0; i < c.Count; i++) p[i] = (float)(p[i] / sum);
                result = Draw(c, p);
            }
            else
            {
                // p ≤ q everywhere yet the draft was refused: only rounding can do that; p itself is then the answer
                result = Draw(c, Probabilities(c));
            }
        }
        q.Unscatter(_dense);
        return result;
    }

    /// <summary>The probability of the most likely token under softmax(<paramref name="logits"/>): a draft's confidence.</summary>
    public static float MaxProbability(ReadOnlySpan<float> logits)
    {
        if (logits.IsEmpty) return 0;
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (float l in logits) sum += MathF.Exp(l - max);
        return (float)(1.0 / sum);
    }

    private float[] _dense = [];

    private void Chain(ReadOnlySpan<float> logits, ReadOnlySpan<int> history)
    {
        // no step shortens the list before it has sorted the whole of it, nor writes logits past the temperature:
        // when the chain ends, the first logits.Length entries still hold the whole row in the chain's order
        _candidates.Load(logits);
        foreach (var step in _steps) step.Apply(_candidates, history);
        _rowCount = logits.Length;
    }

    private static int Best(Candidates c)
    {
        int best = 0;
        for (int i = 1; i < c.Count; i++) if (c.Logits[i] > c.Logits[best]) best = i;
        return best;
    }

    private int Draw(Candidates c, float[] probs)
    {
        double u = _rng.NextDouble(), cum = 0;
        for (int i = 0; i < c.Count; i++)
        {
            cum += probs[i];
            if (u < cum) return c.Ids[i];
        }
        return c.Ids[c.Count - 1];
    }
}

/// <summary>
/// A distribution over token ids, as a draft sampled from it: the candidates its sampler kept and their probabilities
/// (summing to 1), or all the mass on one token.
/// </summary>
public sealed class TokenDistribution
{
    private int[] _ids = new int[1];
    private float[] _probs = new float[1];

    /// <summary>Tokens with a probability above 0 (the first Count of Ids).</summary>
    public int Count { get; private set; }
    public ReadOnlySpan<int> Ids => _ids.AsSpan(0, Count);
    public ReadOnlySpan<float> Probabilities => _probs.AsSpan(0, Count);
    /// <summary>All the mass is on one token.</summary>
    public bool IsPointMass => Count == 1;

    /// <summary>The probability of the most likely token.</summary>
    public float Max => Count == 0 ? 0 : TensorPrimitives.Max(Probabilities);

    public float ProbabilityOf(int id)
    {
        int i = Ids.IndexOf(id);
        return i < 0 ? 0 : _probs[i];
    }

    public void SetPointMass(int id)
    {
        _ids[0] = id;
        _probs[0] = 1;
        Count = 1;
    }

    public void Set(ReadOnlySpan<int> ids, ReadOnlySpan<float> probs)
    {
        if (_ids.Length < ids.Length)
        {
            _ids = new int[ids.Length];
            _probs = new float[ids.Length];
        }
        ids.CopyTo(_ids);
        probs[..ids.Length].CopyTo(_probs);
        Count = ids.Length;
    }

    /// <summary>Writes the probabilities into a dense row of zeros indexed by id; <see cref="Unscatter"/> zeroes it again.</summary>
    internal void Scatter(float[] dense)
    {
        for (int i = 0; i < Count; i++) if ((uint)_ids[i] < (uint)dense.Length) dense[_ids[i]] = _probs[i];
    }

    internal void Unscatter(float[] dense)
    {
        for (int i = 0; i < Count; i++) if ((uint)_ids[i] < (uint)dense.Length) dense[_ids[i]] = 0;
    }
}

/// <summary>xoshiro256** seeded by SplitMix64: the same stream on every platform and runtime.</summary>
public struct Xoshiro256
{
    private ulong _s0, _s1, _s2, _s3;

    public Xoshiro256(ulong seed)
    {
        _s0 = SplitMix(ref seed); _s1 = SplitMix(ref seed); _s2 = SplitMix(ref seed); _s3 = SplitMix(ref seed);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong Next()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [-1, 1).</summary>
    public float NextSignedFloat() => (float)(NextDouble() * 2 - 1);
}
