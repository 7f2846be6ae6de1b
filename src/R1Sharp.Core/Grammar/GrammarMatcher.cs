// The token-mask provider the sampler consults: where one sequence stands in the grammar, which tokens may come
// next, and the history to roll back (speculative decoding). One per sequence; not thread-safe.
namespace R1Sharp.Grammar;

/// <summary>The seam between a grammar and the sampler.</summary>
public interface IGrammarMatcher
{
    /// <summary>Tokens in the vocabulary (mask bits).</summary>
    int VocabSize { get; }
    /// <summary>Whether <paramref name="token"/> may come next (cheap: try the sampled token first).</summary>
    bool IsAllowed(int token);
    /// <summary>Feeds a token; false (state unchanged) when it is not allowed.</summary>
    bool Accept(int token);
    /// <summary>Sets bit t of <paramref name="allowed"/> (word t/64, bit t%64) exactly for the tokens that may come next.</summary>
    void FillMask(Span<ulong> allowed);
    /// <summary>The grammar may end here: an end token is allowed.</summary>
    bool IsComplete { get; }
    /// <summary>An end token was accepted: nothing more is allowed.</summary>
    bool IsTerminated { get; }
    /// <summary>Tokens accepted since the start (or the last <see cref="Reset"/>).</summary>
    int TokenCount { get; }
    /// <summary>Undoes the last <paramref name="tokens"/> accepted tokens.</summary>
    void Rollback(int tokens);
    /// <summary>An independent matcher in the same state (with the same history).</summary>
    IGrammarMatcher Clone();
    /// <summary>Back to the start of the grammar.</summary>
    void Reset();
}

public sealed class GrammarMatcher : IGrammarMatcher
{
    private const int Terminated = -1;

    private readonly CompiledGrammar _grammar;
    private readonly GrammarVocabulary _vocab;
    private readonly PdaContext _ctx;
    private readonly List<int> _history = [];
    private int[] _cfgScratch = new int[64];

    internal GrammarMatcher(CompiledGrammar grammar)
    {
        _grammar = grammar;
        _vocab = grammar.Vocabulary;
        _ctx = new PdaContext(grammar.Automaton);
        _history.Add(_ctx.Start());
    }

    public int VocabSize => _vocab.Size;
    public CompiledGrammar Grammar => _grammar;
    private int Current => _history[^1];
    public bool IsTerminated => Current == Terminated;
    public bool IsComplete => Current == Terminated || _ctx[Current].Accepting;
    public int TokenCount => _history.Count - 1;

    public bool IsAllowed(int token) => Next(token) is int c && c != PdaContext.Dead;

    public bool Accept(int token)
    {
        int? c = Next(token);
        if (c is not int next || next == PdaContext.Dead) return false;
        _history.Add(next);
        return true;
    }

    /// <summary>Feeds raw bytes (text forced into the output, not a sampled token); false (state unchanged) when they do not fit.</summary>
    public bool AcceptBytes(ReadOnlySpan<byte> bytes)
    {
        if (IsTerminated) return false;
        int c = _ctx.Run(Current, bytes);
        if (c == PdaContext.Dead) return false;
        _history.Add(c);
        return true;
    }

    // The configuration after the token; Dead when not allowed, Terminated for an allowed end token.
    private int? Next(int token)
    {
        if (IsTerminated || (uint)token >= (uint)_vocab.Size) return null;
        if (_vocab.IsEnd(token)) return _ctx[Current].Accepting ? Terminated : null;
        if (!_vocab.Eligible[token]) return null;
        return _ctx.Run(Current, _vocab.TokenBytes[token]);
    }

    public void FillMask(Span<ulong> allowed)
    {
        if (allowed.Length < _vocab.MaskWords) throw new ArgumentException($"the mask needs {_vocab.MaskWords} words", nameof(allowed));
        allowed.Clear();
        if (IsTerminated) return;
        var c = _ctx[Current];
        foreach (int node in c.Tops)
        {
            var set = _grammar.SetFor(_ctx.NodeState(node));
            set.OrInto(allowed);
            if (set.Uncertain is { } trie)
            {
                int exit = _ctx.ExitOf(node);
                if (exit != PdaContext.Dead) WalkRemainders(trie, exit, allowed);
            }
        }
        if (c.Accepting) foreach (int e in _vocab.EndTokens) allowed[e >> 6] |= 1UL << (e & 63);
    }

    // Sets the tokens whose remaining bytes the configuration 'start' (past the frame's end) accepts.
    private void WalkRemainders(TokenTrie trie, int start, Span<ulong> allowed)
    {
        if (_cfgScratch.Length <= trie.MaxDepth) _cfgScratch = new int[trie.MaxDepth + 1];
        var cfg = _cfgScratch;
        cfg[0] = start;
        byte[] bytes = trie.Byte;
        int[] depth = trie.Depth, end = trie.End, tokStart = trie.TokStart, tokens = trie.Tokens;
        int[] trans = _ctx.Transitions;
        int i = 1, n = trie.Count;
        while (i < n)
        {
            int from = cfg[depth[i] - 1];
            int c = trans[(from << 8) | bytes[i]];
            if (c < 0)
            {
                c = _ctx.Step(from, bytes[i]);
                trans = _ctx.Transitions;
            }
            if (c == PdaContext.Dead) { i = end[i]; continue; }
            cfg[depth[i]] = c;
            for (int k = tokStart[i], e = tokStart[i + 1]; k < e; k++)
            {
                int t = tokens[k];
                allowed[t >> 6] |= 1UL << (t & 63);
            }
            i++;
        }
    }

    public void Rollback(int tokens)
    {
        if (tokens < 0 || tokens > TokenCount) throw new ArgumentOutOfRangeException(nameof(tokens), $"can roll back 0..{TokenCount} tokens");
        _history.RemoveRange(_history.Count - tokens, tokens);
    }

    public IGrammarMatcher Clone()
    {
        var m = new GrammarMatcher(_grammar);
        m._history.Clear();
        foreach (int h in _history) m._history.Add(h == Terminated ? Terminated : m._ctx.Import(_ctx.Export(h)));
        return m;
    }

    public void Reset()
    {
        _history.RemoveRange(1, _history.Count - 1);
    }
}
