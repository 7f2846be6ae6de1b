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

    /// <summary>Short parts (tokens of at most SplitDepth bytes) found by a state's key, and mended from a reference.</summary>
    internal int PartsFound, PartsMended;

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
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                s = Compute(state, out bool computed);
                if (computed)
                {
                    TokenSetsComputed++;
                    TokenSetTime += System.Diagnostics.Stopwatch.GetElapsedTime(t0);
                }
                Volatile.Write(ref _sets[state], s);
            }
            return s;
        }
    }

    /// <summary>A state whose first bytes lead to fewer trie nodes than this is walked whole.</summary>
    private const int SmallWalk = 30_000;
    /// <summary>A short part that took a walk of this many nodes is kept as a reference to mend from.</summary>
    private const int ReferenceMinNodes = 20_000;
    /// <summary>A configuration that a first byte leads to gets a key shared by grammars when this many short-trie
    /// nodes lead to it (and two bytes, or one seen in an earlier state of this grammar).</summary>
    private const int KeyedMass = 4096;
    /// <summary>Most DFA states hashed into the key of a whole token set (within the longest token's reach).</summary>
    private const int MaxWholeKeyStates = 128;
    /// <summary>Most DFA states hashed into the key of a short part (within SplitDepth bytes).</summary>
    private const int MaxShortKeyStates = 1024;

    // A state's tokens. A state whose first bytes lead to little of the trie is walked whole. Otherwise its set is
    // looked up by what it does within the longest token's reach (shared by every grammar of the vocabulary), or
    // made of two parts. The long tokens (over SplitDepth bytes, a small trie) are walked from the frame alone. The
    // short ones depend only on what the state does with SplitDepth bytes: a part computed for an equal key is taken
    // as it is; one whose first bytes lead where the state's do, but for a few (the first character of an object key
    // under additionalProperties, whose declared names differ from schema to schema), is copied and mended under
    // those bytes; otherwise the short trie is walked whole.
    private TokenSet Compute(int state, out bool computed)
    {
        var v = Vocabulary;
        var ctx = _ciContext;
        int start = ctx.Alone(state);
        var trie = v.Trie;
        int live = 0;
        for (int i = 1; i < trie.Count; i = trie.End[i])
            if (ctx.Step(start, trie.Byte[i]) != PdaContext.Dead) live += trie.End[i] - i;
        computed = true;
        if (live < SmallWalk)
        {
            var small = new ulong[v.MaskWords];
            var smallExits = new List<(int, int)>();
            Walk(trie, start, 1, trie.Count, small, smallExits);
            return MakeSet(small, smallExits);
        }
        var wholeKey = Automaton.BoundedKey(state, trie.MaxDepth, MaxWholeKeyStates);
        if (wholeKey is UInt128 wk && v.TryGetShared(wk, out var shared))
        {
            computed = false;
            return shared;
        }
        var part = ShortPartOf(state, start);
        var bits = (ulong[])part.Bits.Clone();
        var exits = new List<(int, int)>(part.Uncertain);
        Walk(v.LongTrie, start, 1, v.LongTrie.Count, bits, exits);
        var set = MakeSet(bits, exits);
        if (wholeKey is UInt128 k) v.AddShared(k, set);
        return set;
    }

    private ShortPart ShortPartOf(int state, int start)
    {
        var v = Vocabulary;
        // a rule whose states keep missing and are then mended from another state (an object key's first characters:
        // declared names differ from schema to schema) stops hashing them
        int rule = Automaton.RuleOf[state];
        _keyMisses ??= new int[Automaton.RuleCount];
        var ownKey = _keyMisses[rule] < MaxKeyMisses ? Automaton.BoundedKey(state, GrammarVocabulary.SplitDepth, MaxShortKeyStates) : null;
        if (ownKey is UInt128 ok && v.TryGetShortPart(ok, out var found))
        {
            PartsFound++;
            _keyMisses[rule] = 0;
            return found;
        }
        // where each first byte leads: a configuration that little of the trie leads to, or one byte the first time
        // it is seen (the next character of a declared name), gets a key of this grammar alone, hashing what it does
        // costing more than walking its bytes' subtrees
        var st = v.ShortTrie;
        var profile = new UInt128[256];
        var firstConfig = new int[256];
        var mass = new Dictionary<int, (int Nodes, int Bytes)>();
        for (int b = 0; b < 256; b++)
        {
            if (v.ShortRoot[b] < 0) continue;
            int c = firstConfig[b] = _ciContext.Step(start, (byte)b);
            if (c == PdaContext.Dead) continue;
            if (!mass.ContainsKey(c) && !_profiled.Add(c)) _recurring.Add(c);
            var (n, k) = mass.GetValueOrDefault(c);
            mass[c] = (n + st.End[v.ShortRoot[b]] - v.ShortRoot[b], k + 1);
        }
        for (int b = 0; b < 256; b++)
        {
            if (v.ShortRoot[b] < 0) continue;
            int c = firstConfig[b];
            profile[b] = c == PdaContext.Dead ? UInt128.Zero
                : mass[c].Nodes >= KeyedMass && (mass[c].Bytes >= 2 || _recurring.Contains(c)) ? ConfigKey(c) : LocalKey(c);
        }
        var reference = v.BestReference(profile, out int cost);
        var bits = new ulong[v.MaskWords];
        var uncertain = new List<(int, int)>();
        int nodes;
        bool mend = reference is not null && cost < st.Count / 2;
        if (mend)
        {
            PartsMended++;
            if (ownKey is not null) _keyMisses[rule]++;
            reference!.Bits.CopyTo(bits, 0);
            var differs = new bool[256];
            for (int b = 0; b < 256; b++) differs[b] = v.ShortRoot[b] >= 0 && reference.Profile[b] != profile[b];
            foreach (var u in reference.Uncertain)
                if (!differs[v.TokenBytes[u.Token][0]]) uncertain.Add(u);
            nodes = 0;
            for (int b = 0; b < 256; b++)
            {
                if (!differs[b]) continue;
                int node = v.ShortRoot[b];
                for (int k = st.TokStart[node], e = st.TokStart[st.End[node]]; k < e; k++)
                {
                    int t = st.Tokens[k];
                    bits[t >> 6] &= ~(1UL << (t & 63));
                }
                if (profile[b] != UInt128.Zero) nodes += Walk(st, start, node, st.End[node], bits, uncertain);
            }
        }
        else nodes = Walk(st, start, 1, st.Count, bits, uncertain);
        var part = new ShortPart(bits, [.. uncertain], profile);
        v.AddShortPart(ownKey, part, reference: mend || nodes >= ReferenceMinNodes);
        return part;
    }

    private TokenSet MakeSet(ulong[] bits, List<(int, int)> uncertain)
    {
        int count = 0;
        foreach (ulong w in bits) count += System.Numerics.BitOperations.PopCount(w);
        // sorted (token, then bytes read), as numbers
        var keys = new long[uncertain.Count];
        for (int k = 0; k < keys.Length; k++) keys[k] = (long)uncertain[k].Item1 << 32 | (uint)uncertain[k].Item2;
        Array.Sort(keys);
        var entries = new (int, int)[keys.Length];
        for (int k = 0; k < keys.Length; k++) entries[k] = ((int)(keys[k] >> 32), (int)keys[k]);
        return new TokenSet(bits, count, entries.Length > 0 ? TokenTrie.Build(Vocabulary.TokenBytes, [.. entries]) : null, entries);
    }

    /// <summary>The states whose token sets this grammar holds, with the sets.</summary>
    internal List<(int State, TokenSet Set)> ComputedSets()
    {
        lock (_lock)
        {
            var list = new List<(int, TokenSet)>();
            for (int s = 0; s < _sets.Length; s++) if (_sets[s] is { } set) list.Add((s, set));
            return list;
        }
    }

    /// <summary>The token set by a walk of the whole trie from the frame alone (what <see cref="SetFor"/> must equal).</summary>
    internal TokenSet ComputeByFullWalk(int state)
    {
        lock (_lock)
        {
            var bits = new ulong[Vocabulary.MaskWords];
            var uncertain = new List<(int, int)>();
            Walk(Vocabulary.Trie, _ciContext.Alone(state), 1, Vocabulary.Trie.Count, bits, uncertain);
            return MakeSet(bits, uncertain);
        }
    }

    // Walks trie nodes [first, end) (whole subtrees, in pre-order) from configuration 'start' at depth 0: the hot
    // loop of a grammar's first use, over flat arrays (the trie's, the context's successor table), accepted tokens
    // set straight into 'bits', tokens that leave the frame added to 'uncertain' with the bytes read when they left.
    // Returns the nodes visited.
    private int Walk(TokenTrie trie, int start, int first, int end, ulong[] bits, List<(int, int)> uncertain)
    {
        var ctx = _ciContext;
        byte[] bytes = trie.Byte;
        int[] depth = trie.Depth, ends = trie.End, tokStart = trie.TokStart, tokens = trie.Tokens;
        var cfg = new int[trie.MaxDepth + 1];
        var exitDepths = new int[trie.MaxDepth + 1];
        int exits = 0, visited = 0;
        cfg[0] = start;
        int[] trans = ctx.Transitions;
        bool[] exited = ctx.ExitedFlags;
        int i = first;
        while (i < end)
        {
            visited++;
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
                    for (int k = tokStart[i], e = tokStart[ends[i]]; k < e; k++)
                        for (int x = 0; x < exits; x++) uncertain.Add((tokens[k], exitDepths[x]));
                i = ends[i];
                continue;
            }
            cfg[d] = c;
            for (int k = tokStart[i], e = tokStart[i + 1]; k < e; k++)
            {
                int t = tokens[k];
                bits[t >> 6] |= 1UL << (t & 63);
            }
            if (exited[c]) exitDepths[exits++] = d;
            i++;
        }
        return visited;
    }

    // Keys of configurations of the context-independent context (by id) and of its stack nodes: what a configuration
    // does with the next SplitDepth - 1 bytes, or a key of this grammar alone where a state has no bounded key.
    private UInt128[] _configKeys = [];
    private int[]? _keyMisses;
    private const int MaxKeyMisses = 3;
    private readonly HashSet<int> _profiled = [], _recurring = [];
    private readonly Dictionary<int, UInt128> _nodeKeys = [];
    private static long s_serial;
    private readonly long _serial = Interlocked.Increment(ref s_serial);

    private UInt128 ConfigKey(int config)
    {
        if (config >= _configKeys.Length) Array.Resize(ref _configKeys, Math.Max(64, Math.Max(config + 1, _configKeys.Length * 2)));
        if (_configKeys[config] == UInt128.Zero)
            _configKeys[config] = SharedConfigKey(config) ?? LocalKey(config);
        return _configKeys[config];
    }

    private UInt128 LocalKey(int config) => new(0x8000_0000_0000_0000UL | (ulong)_serial, (ulong)config);

    private UInt128? SharedConfigKey(int config)
    {
        var c = _ciContext[config];
        var keys = new UInt128[c.Tops.Length + 1];
        keys[0] = c.Exited ? UInt128.One : UInt128.Zero;
        for (int i = 0; i < c.Tops.Length; i++)
            if (NodeKey(c.Tops[i]) is UInt128 k) keys[i + 1] = k;
            else return null;
        Array.Sort(keys, 1, c.Tops.Length);
        return GrammarAutomaton.HashKey(System.Runtime.InteropServices.MemoryMarshal.AsBytes(keys.AsSpan()));
    }

    // A stack (top node and the frames below it, down to the Sentinel): the bounded keys of its states in order.
    private UInt128? NodeKey(int node)
    {
        if (_nodeKeys.TryGetValue(node, out var k)) return k == UInt128.Zero ? null : k;
        UInt128? result = null;
        if (Automaton.BoundedKey(_ciContext.NodeState(node), GrammarVocabulary.SplitDepth - 1, MaxShortKeyStates) is UInt128 own)
        {
            int parent = _ciContext.NodeParent(node);
            UInt128? below = parent == PdaContext.Sentinel ? UInt128.One : NodeKey(parent);
            if (below is UInt128 bk)
            {
                Span<UInt128> pair = [own, bk];
                result = GrammarAutomaton.HashKey(System.Runtime.InteropServices.MemoryMarshal.AsBytes(pair));
            }
        }
        _nodeKeys[node] = result ?? UInt128.Zero;
        return result;
    }
}

/// <summary>The tokens of one stack-top state: accepted outright, and the remainders to check past the frame's end.</summary>
internal sealed class TokenSet
{
    private const int BitsetThreshold = 64; // ids per mask word above which a bitset is kept instead of a list

    public readonly ulong[]? Bits;
    public readonly int[]? Ids;
    public readonly TokenTrie? Uncertain;
    /// <summary>The tokens that leave the frame and the bytes read when they leave, sorted.</summary>
    public readonly (int Token, int Exit)[] UncertainEntries;
    public readonly int AcceptedCount;

    /// <param name="accepted">The accepted tokens as a bitset (bit t of word t/64), kept when dense.</param>
    public TokenSet(ulong[] accepted, int acceptedCount, TokenTrie? uncertain, (int, int)[] uncertainEntries)
    {
        AcceptedCount = acceptedCount;
        Uncertain = uncertain;
        UncertainEntries = uncertainEntries;
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
        + (Uncertain is { } u ? u.Count * 13L + u.Tokens.Length * 12L : 0);

    public void OrInto(Span<ulong> mask)
    {
        if (Bits is not null) TensorPrimitives.BitwiseOr(mask, Bits, mask);
        else foreach (int t in Ids!) mask[t >> 6] |= 1UL << (t & 63);
    }
}
