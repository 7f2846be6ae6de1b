// A grammar compiled for one vocabulary, shared by every request and sequence that uses it. For each DFA state
// that can be a stack top it holds, computed on first use, the tokens accepted whatever lies below the top frame
// (XGrammar's context-independent tokens) and a trie of the remainders of tokens that leave the frame, which a
// matcher checks against its real stack.
using System.Numerics.Tensors;

namespace R1Sharp.Grammar;

public sealed class CompiledGrammar
{
    private readonly TokenSet?[] _sets;
    private readonly PdaContext _ciContext;
    private readonly Lock _lock = new();

    public GrammarAutomaton Automaton { get; }
    public GrammarVocabulary Vocabulary { get; }

    private CompiledGrammar(GrammarAutomaton automaton, GrammarVocabulary vocabulary)
    {
        Automaton = automaton;
        Vocabulary = vocabulary;
        _sets = new TokenSet?[automaton.StateCount];
        _ciContext = new PdaContext(automaton);
    }

    public static CompiledGrammar Create(GrammarAutomaton automaton, GrammarVocabulary vocabulary) => new(automaton, vocabulary);

    public static CompiledGrammar Create(GrammarDefinition definition, GrammarVocabulary vocabulary) =>
        new(GrammarAutomaton.Compile(definition), vocabulary);

    /// <summary>A matcher at the start of the grammar, for one sequence.</summary>
    public GrammarMatcher CreateMatcher() => new(this);

    /// <summary>Token sets this grammar computed itself (not found in the vocabulary's shared cache).</summary>
    public int TokenSetsComputed { get; private set; }
    /// <summary>Time spent computing them.</summary>
    public TimeSpan TokenSetTime { get; private set; }

    /// <summary>Token sets computed so far (of <see cref="GrammarAutomaton.DfaStateCount"/>).</summary>
    public int CachedStates { get { lock (_lock) return _sets.Count(s => s is not null); } }

    internal TokenSet SetFor(int state)
    {
        var s = Volatile.Read(ref _sets[state]);
        if (s is not null) return s;
        lock (_lock)
        {
            s = _sets[state];
            if (s is null)
            {
                string? key = Automaton.SharedKey(state);
                if (key is null || !Vocabulary.TryGetShared(key, out s))
                {
                    long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    s = Compute(state);
                    TokenSetsComputed++;
                    TokenSetTime += System.Diagnostics.Stopwatch.GetElapsedTime(t0);
                    if (key is not null) Vocabulary.AddShared(key, s);
                }
                Volatile.Write(ref _sets[state], s);
            }
            return s;
        }
    }

    // Walks the whole token trie from the frame of 'state' alone (the Sentinel below it).
    private TokenSet Compute(int state)
    {
        var ctx = _ciContext;
        var trie = Vocabulary.Trie;
        var cfg = new int[trie.MaxDepth + 1];
        cfg[0] = ctx.Alone(state);
        var exitDepths = new List<int>();
        var accepted = new List<int>();
        var uncertain = new List<(int, int)>();
        int i = 1;
        while (i < trie.Count)
        {
            int d = trie.Depth[i];
            while (exitDepths.Count > 0 && exitDepths[^1] >= d) exitDepths.RemoveAt(exitDepths.Count - 1);
            int c = ctx.Step(cfg[d - 1], trie.Byte[i]);
            if (c == PdaContext.Dead)
            {
                if (exitDepths.Count > 0)
                    for (int k = trie.TokStart[i], e = trie.TokStart[trie.End[i]]; k < e; k++)
                        foreach (int x in exitDepths) uncertain.Add((trie.Tokens[k], x));
                i = trie.End[i];
                continue;
            }
            cfg[d] = c;
            for (int k = trie.TokStart[i], e = trie.TokStart[i + 1]; k < e; k++) accepted.Add(trie.Tokens[k]);
            if (ctx[c].Exited) exitDepths.Add(d);
            i++;
        }
        return new TokenSet(accepted, uncertain.Count > 0 ? TokenTrie.Build(Vocabulary.TokenBytes, uncertain) : null, Vocabulary.Size);
    }
}

/// <summary>The tokens of one stack-top state: accepted outright, and the remainders to check past the frame's end.</summary>
internal sealed class TokenSet
{
    private const int BitsetThreshold = 64; // ids per mask word above which a bitset is kept instead of a list

    public readonly ulong[]? Bits;
    public readonly int[]? Ids;
    public readonly TokenTrie? Uncertain;
    public readonly int AcceptedCount;

    public TokenSet(List<int> accepted, TokenTrie? uncertain, int vocabSize)
    {
        AcceptedCount = accepted.Count;
        Uncertain = uncertain;
        int words = (vocabSize + 63) >> 6;
        if (accepted.Count * 2 > words * BitsetThreshold / 16)
        {
            Bits = new ulong[words];
            foreach (int t in accepted) Bits[t >> 6] |= 1UL << (t & 63);
        }
        else Ids = accepted.ToArray();
    }

    public long ApproximateBytes =>
        64 + (Bits?.Length ?? 0) * 8L + (Ids?.Length ?? 0) * 4L
        + (Uncertain is { } u ? u.Count * 13L + u.Tokens.Length * 4L : 0);

    public void OrInto(Span<ulong> mask)
    {
        if (Bits is not null) TensorPrimitives.BitwiseOr(mask, Bits, mask);
        else foreach (int t in Ids!) mask[t >> 6] |= 1UL << (t & 63);
    }
}
