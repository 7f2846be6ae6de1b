// Prompt lookup decoding (n-gram drafts, as llama.cpp's lookup and Hugging Face's prompt_lookup_num_tokens): when the
// last n tokens of a sequence appeared earlier in it, propose the tokens that followed them then. No second model;
// it pays where the output repeats its input or itself (lists, code edits, quoted passages).
using R1Sharp.Sampling;

namespace R1Sharp.Engine;

/// <summary>Drafts the continuation of the most recent earlier occurrence of the sequence's last n tokens, the longest n first.</summary>
public sealed class NgramProposer : IDraftProposer
{
    private readonly int _minN, _maxN;

    /// <param name="minN">Shortest n-gram matched (shorter ones match by chance too often).</param>
    /// <param name="maxN">Longest n-gram matched.</param>
    public NgramProposer(int minN = DefaultMinN, int maxN = DefaultMaxN)
    {
        if (minN < 1 || maxN < minN) throw new ArgumentException($"n-gram sizes must satisfy 1 <= min <= max (got {minN}, {maxN})");
        _minN = minN;
        _maxN = maxN;
    }

    public const int DefaultMinN = 2, DefaultMaxN = 4;

    public void Start(SamplingParams sampling) { }

    public void Propose(ReadOnlySpan<int> tokens, Draft draft)
    {
        int length = tokens.Length;
        for (int n = Math.Min(_maxN, length - 1); n >= _minN; n--)
        {
            var key = tokens[(length - n)..];
            // the most recent match first: a sequence that repeats tends to repeat what it wrote last
            for (int j = length - n - 1; j >= 0; j--)
            {
                if (!tokens.Slice(j, n).SequenceEqual(key)) continue;
                // past the sequence's end the copy reads what it drafted: a repeating pattern goes on repeating
                for (int i = j + n; !draft.IsFull; i++) draft.Add(i < length ? tokens[i] : draft.Tokens[i - length]);
                return;
            }
        }
    }

    public void Accepted(int proposed, int accepted) { }

    public void Dispose() { }
}

/// <summary>N-gram lookup drafts for every slot (<c>--spec ngram</c>).</summary>
public sealed class NgramSource(int minN = NgramProposer.DefaultMinN, int maxN = NgramProposer.DefaultMaxN) : IDraftSource
{
    public string Name => "ngram";

    public IDraftProposer CreateProposer(int contextSize) => new NgramProposer(minN, maxN);

    public void Dispose() { }
}
