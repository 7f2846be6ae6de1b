// The model's vocabulary as the grammar matcher sees it: each token's bytes, which tokens may appear inside
// grammar text (special and unused tokens never do), which ones end generation, and a byte trie of all
// tokens in pre-order so that a walk shares the work of common prefixes. Built once per model, shared.
using R1Sharp.Tokenization;

namespace R1Sharp.Grammar;

public sealed class GrammarVocabulary
{
    internal readonly byte[][] TokenBytes;
    internal readonly bool[] Eligible;
    internal readonly TokenTrie Trie;
    /// <summary>Tokens of at most <see cref="SplitDepth"/> bytes, and the longer ones, in tries of their own.</summary>
    internal readonly TokenTrie ShortTrie, LongTrie;
    /// <summary>The node of ShortTrie at depth 1 reached by byte b, or -1.</summary>
    internal readonly int[] ShortRoot = new int[256];

    /// <summary>
    /// Token sets are computed in two parts: tokens of at most this many bytes, whose part depends only on what a
    /// state does with that many bytes (and is shared through <see cref="GrammarAutomaton.BoundedKey"/>), and the
    /// few longer ones (424 of Qwen2.5's tokens, a trie of 6,655 nodes), walked for every state.
    /// </summary>
    internal const int SplitDepth = 24;
    private readonly bool[] _isEnd;

    /// <param name="tokenBytes">The bytes of each token id.</param>
    /// <param name="eligible">Tokens that may appear inside grammar text (not special, not empty).</param>
    /// <param name="endTokens">Tokens that end generation: allowed exactly when the grammar is complete.</param>
    public GrammarVocabulary(byte[][] tokenBytes, bool[] eligible, IEnumerable<int> endTokens)
    {
        ArgumentNullException.ThrowIfNull(tokenBytes);
        if (eligible.Length != tokenBytes.Length) throw new ArgumentException("one eligibility flag per token is needed", nameof(eligible));
        TokenBytes = tokenBytes;
        Eligible = (bool[])eligible.Clone();
        _isEnd = new bool[tokenBytes.Length];
        var ends = new List<int>();
        foreach (int e in endTokens)
        {
            if ((uint)e >= (uint)tokenBytes.Length) throw new ArgumentOutOfRangeException(nameof(endTokens), $"end token {e} is outside the vocabulary");
            _isEnd[e] = true;
            Eligible[e] = false;
            ends.Add(e);
        }
        EndTokens = ends.ToArray();
        var entries = new List<(int, int)>(tokenBytes.Length);
        for (int t = 0; t < tokenBytes.Length; t++)
            if (Eligible[t] && tokenBytes[t].Length > 0) entries.Add((t, 0));
            else Eligible[t] = false;
        Trie = TokenTrie.Build(tokenBytes, entries);
        ShortTrie = TokenTrie.Build(tokenBytes, entries.Where(e => tokenBytes[e.Item1].Length <= SplitDepth).ToList());
        LongTrie = TokenTrie.Build(tokenBytes, entries.Where(e => tokenBytes[e.Item1].Length > SplitDepth).ToList());
        Array.Fill(ShortRoot, -1);
        for (int i = 1; i < ShortTrie.Count; i = ShortTrie.End[i]) ShortRoot[ShortTrie.Byte[i]] = i;
    }

    /// <summary>The vocabulary of a tokenizer: control and unused tokens are never allowed inside the grammar; the
    /// tokenizer's end-of-generation tokens (and <paramref name="extraEndTokens"/>) end it.</summary>
    public static GrammarVocabulary FromTokenizer(BpeTokenizer tokenizer, IEnumerable<int>? extraEndTokens = null)
    {
        int n = tokenizer.VocabSize;
        var bytes = new byte[n][];
        var eligible = new bool[n];
        for (int t = 0; t < n; t++)
        {
            bytes[t] = tokenizer.TokenBytes(t).ToArray();
            eligible[t] = tokenizer.TokenTypeOf(t) is TokenType.Normal or TokenType.Byte or TokenType.UserDefined;
        }
        var ends = new HashSet<int>(tokenizer.EndOfGeneration);
        if (extraEndTokens is not null) ends.UnionWith(extraEndTokens);
        return new GrammarVocabulary(bytes, eligible, ends);
    }

    // Token sets of rule states shared by grammars (keyed by GrammarAutomaton.BoundedKey); emptied past a memory bound.
    private const long SharedCacheMaxBytes = 256L << 20;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<UInt128, TokenSet> _shared = new();
    private long _sharedBytes;

    internal bool TryGetShared(UInt128 key, out TokenSet set) => _shared.TryGetValue(key, out set!);

    internal void AddShared(UInt128 key, TokenSet set)
    {
        if (Interlocked.Add(ref _sharedBytes, set.ApproximateBytes) > SharedCacheMaxBytes)
        {
            _shared.Clear();
            Interlocked.Exchange(ref _sharedBytes, set.ApproximateBytes);
        }
        _shared.TryAdd(key, set);
    }

    // Short parts (tokens of at most SplitDepth bytes) keyed by the state's profile, and the largest ones kept as
    // references that a state differing in a few first bytes copies and mends (ShortPart).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<UInt128, ShortPart> _shortParts = new();
    private readonly List<ShortPart> _references = [];
    private const int MaxReferences = 64;

    internal bool TryGetShortPart(UInt128 key, out ShortPart part) => _shortParts.TryGetValue(key, out part!);

    internal void AddShortPart(UInt128? key, ShortPart part, bool reference)
    {
        if (key is null && !reference) return;
        if (Interlocked.Add(ref _sharedBytes, part.ApproximateBytes) > SharedCacheMaxBytes)
        {
            _shared.Clear();
            _shortParts.Clear();
            lock (_references) _references.Clear();
            Interlocked.Exchange(ref _sharedBytes, part.ApproximateBytes);
        }
        if (key is UInt128 k) _shortParts.TryAdd(k, part);
        if (!reference) return;
        lock (_references)
        {
            if (_references.Count >= MaxReferences) _references.RemoveAt(0);
            _references.Add(part);
        }
    }

    /// <summary>The reference part whose first bytes lead where <paramref name="profile"/>'s do for the most trie
    /// nodes; <paramref name="cost"/> is the number of short-trie nodes under the first bytes that differ.</summary>
    internal ShortPart? BestReference(UInt128[] profile, out int cost)
    {
        ShortPart? best = null;
        cost = int.MaxValue;
        var trie = ShortTrie;
        lock (_references)
            foreach (var r in _references)
            {
                int c = 0;
                for (int b = 0; b < 256 && c < cost; b++)
                    if (ShortRoot[b] >= 0 && r.Profile[b] != profile[b]) c += trie.End[ShortRoot[b]] - ShortRoot[b];
                if (c < cost) { cost = c; best = r; }
            }
        return best;
    }

    /// <summary>Token sets held in the cache shared by the grammars of this vocabulary.</summary>
    public int SharedTokenSets => _shared.Count;

    public int Size => TokenBytes.Length;
    /// <summary>ulongs in a token mask: bit t of word t/64 is token t.</summary>
    public int MaskWords => (Size + 63) >> 6;
    public IReadOnlyList<int> EndTokens { get; }
    public bool IsEnd(int token) => (uint)token < (uint)_isEnd.Length && _isEnd[token];
    public bool IsEligible(int token) => (uint)token < (uint)Eligible.Length && Eligible[token];
    public ReadOnlySpan<byte> Bytes(int token) => TokenBytes[token];
    /// <summary>Nodes of the token trie (a measure of the work of a full walk).</summary>
    public int TrieNodeCount => Trie.Count;
}

/// <summary>
/// The tokens of at most <see cref="GrammarVocabulary.SplitDepth"/> bytes that a state accepts (a bitset over token
/// ids) and those that leave its frame (token, bytes read when it left), with the state's profile: for each first
/// byte, the key of the configuration it leads to (0 where it leads nowhere).
/// </summary>
internal sealed class ShortPart(ulong[] bits, (int Token, int Exit)[] uncertain, UInt128[] profile)
{
    public readonly ulong[] Bits = bits;
    public readonly (int Token, int Exit)[] Uncertain = uncertain;
    public readonly UInt128[] Profile = profile;
    public long ApproximateBytes => 64 + Bits.Length * 8L + Uncertain.Length * 8L + Profile.Length * 16L;
}

/// <summary>
/// A byte trie of (token, byte offset) entries in pre-order: node i has depth Depth[i], arrives by byte Byte[i],
/// and its subtree is [i, End[i]). Tokens whose remaining bytes end at node i are Tokens[TokStart[i]..TokStart[i+1]].
/// </summary>
internal sealed class TokenTrie
{
    public int Count;
    public byte[] Byte = [];
    public int[] Depth = [], End = [], TokStart = [], Tokens = [];
    public int MaxDepth;

    public static TokenTrie Build(byte[][] tokenBytes, List<(int Token, int Offset)> entries)
    {
        // sorted by the remainders' bytes: by their first eight bytes as one number, the rest compared only on a tie
        // (a whitespace state leaves tens of thousands of remainders to sort)
        var prefixes = new ulong[entries.Count];
        var order = new int[entries.Count];
        for (int k = 0; k < entries.Count; k++)
        {
            var s = tokenBytes[entries[k].Token].AsSpan(entries[k].Offset);
            ulong p = 0;
            for (int j = 0; j < 8; j++) p = p << 8 | (j < s.Length ? s[j] : 0UL);
            prefixes[k] = p;
            order[k] = k;
        }
        Array.Sort(prefixes, order);
        for (int a = 0, b; a < order.Length; a = b)
        {
            for (b = a + 1; b < order.Length && prefixes[b] == prefixes[a]; b++) { }
            if (b - a > 1) Array.Sort(order, a, b - a, Comparer<int>.Create((x, y) =>
            {
                var (tx, ox) = entries[x];
                var (ty, oy) = entries[y];
                int c = tokenBytes[tx].AsSpan(ox).SequenceCompareTo(tokenBytes[ty].AsSpan(oy));
                return c != 0 ? c : tx.CompareTo(ty);
            }));
        }
        var sorted = new List<(int Token, int Offset)>(entries.Count);
        foreach (int k in order) sorted.Add(entries[k]);
        entries = sorted;
        var bytes = new List<byte> { 0 };
        var depth = new List<int> { 0 };
        var end = new List<int> { 0 };
        var nodeOfEntry = new int[entries.Count];
        var path = new List<int> { 0 }; // node ids along the current path, by depth
        ReadOnlySpan<byte> prev = default;
        int maxDepth = 0;
        for (int k = 0; k < entries.Count; k++)
        {
            var s = tokenBytes[entries[k].Token].AsSpan(entries[k].Offset);
            int lcp = prev.CommonPrefixLength(s);
            while (path.Count - 1 > lcp) { end[path[^1]] = bytes.Count; path.RemoveAt(path.Count - 1); }
            for (int d = lcp; d < s.Length; d++)
            {
                int id = bytes.Count;
                bytes.Add(s[d]);
                depth.Add(d + 1);
                end.Add(0);
                path.Add(id);
            }
            nodeOfEntry[k] = path[^1];
            maxDepth = Math.Max(maxDepth, s.Length);
            prev = s;
        }
        while (path.Count > 0) { end[path[^1]] = bytes.Count; path.RemoveAt(path.Count - 1); }
        var t = new TokenTrie
        {
            Count = bytes.Count, Byte = bytes.ToArray(), Depth = depth.ToArray(), End = end.ToArray(), MaxDepth = maxDepth,
            TokStart = new int[bytes.Count + 1], Tokens = new int[entries.Count],
        };
        foreach (int node in nodeOfEntry) t.TokStart[node + 1]++;
        for (int i = 0; i < t.Count; i++) t.TokStart[i + 1] += t.TokStart[i];
        var fill = (int[])t.TokStart.Clone();
        for (int k = 0; k < entries.Count; k++) t.Tokens[fill[nodeOfEntry[k]]++] = entries[k].Token;
        return t;
    }
}
