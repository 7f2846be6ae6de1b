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

    // Walks the whole token trie from the frame of 'state' alone (the Sentinel below it): the hot loop of a grammar's
    // first use, over flat arrays (the trie's, the context's successor table) with the accepted tokens set straight
    // into a bitset.
    private TokenSet Compute(int state)
    {
        var ctx = _ciContext;
        var trie = Vocabulary.Trie;
        byte[] bytes = trie.Byte;
        int[] depth = trie.Depth, end = trie.End, tokStart = trie.TokStart, tokens = trie.Tokens;
        var cfg = new int[trie.MaxDepth + 1];
        var exitDepths = new int[trie.MaxDepth + 1];
        int exits = 0, acceptedCount = 0;
        cfg[0] = ctx.Alone(state);
        var bits = new ulong[Vocabulary.MaskWords];
        var uncertain = new List<(int, int)>();
        int[] trans = ctx.Transitions;
        bool[] exited = ctx.ExitedFlags;
        int i = 1, n = trie.Count;
        while (i < n)
        {
            int d = depth[i];
            while (exits > 0 && exitDepths[exits - 1] >= d) exits--;
            int from = cfg[d - 1];
            int c = trans[(from << 8) | bytes[i]];
            if (c < 0)
            {
                c = ctx.Step(from, bytes[i]);
                trans = ctx.Transitions;
                exited = ctx.ExitedFlags;
            }
            if (c == PdaContext.Dead)
            {
                if (exits > 0)
                    for (int k = tokStart[i], e = tokStart[end[i]]; k < e; k++)
                        for (int x = 0; x < exits; x++) uncertain.Add((tokens[k], exitDepths[x]));
                i = end[i];
                continue;
            }
            cfg[d] = c;
            for (int k = tokStart[i], e = tokStart[i + 1]; k < e; k++)
            {
                int t = tokens[k];
                bits[t >> 6] |= 1UL << (t & 63);
                acceptedCount++;
            }
            if (exited[c]) exitDepths[exits++] = d;
            i++;
        }
        return new TokenSet(bits, acceptedCount, uncertain.Count > 0 ? TokenTrie.Build(Vocabulary.TokenBytes, uncertain) : null);
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

    /// <param name="accepted">The accepted tokens as a bitset (bit t of word t/64), kept when dense.</param>
    public TokenSet(ulong[] accepted, int acceptedCount, TokenTrie? uncertain)
    {
        AcceptedCount = acceptedCount;
        Uncertain = uncertain;
        if (acceptedCount * 2 > accepted.Length * BitsetThreshold / 16)
        {
            Bits = accepted;
            return;
        }
        var ids = new int[acceptedCount];
        int n = 0;
        for (int w = 0; w < accepted.Length; w++)
            for (ulong b = accepted[w]; b != 0; b &= b - 1)
                ids[n++] = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(b);
        Ids = ids;
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
