// The approximate index of which prompt prefixes went to which node, the router's picture of the nodes' KV caches
// (SGLang's router keeps the same: a tree per worker of what it routed there, not what the worker holds).
// Prompts are cut into blocks of B tokens and each block's hash chains the one before, so a block hash names a whole
// prefix: the deepest hash a node knows is the longest prefix it was sent. A wrong guess costs a prefill, never a
// wrong answer: the engine checks token by token what its slots hold.
//
// The engine keeps one sequence per KV-cache slot and gives a new request the free slot sharing the longest prefix
// with its prompt (when that covers half of it; else the least recently used slot), so the index mirrors that too:
// per node it keeps the tips of the sequences it believes cached (at most one per slot, least recently used first
// out; a follow-up replaces the tip it continues). A tip is a position in tokens with the hash of the prefix up to it, so a prompt that passes through a tip
// continues that sequence (a follow-up turn) even where the sequences part inside a block; one that shares blocks
// with a tip without passing it is a sibling (another conversation with the same system prompt).
namespace R1Sharp.Cluster;

public sealed class PrefixIndex<TNode> where TNode : notnull
{
    /// <summary>Tokens at the end of a prompt that the next turn may render differently (R1's generation prompt ends with
    /// "&lt;think&gt;\n", which the history of the next turn drops): the tip is placed before them.</summary>
    public const int TailSlack = 8;

    private readonly Dictionary<TNode, NodeEntries> _nodes = [];
    private readonly Lock _lock = new();
    private readonly int _maxBlocksPerNode;
    private long _clock;

    /// <summary>A sequence believed cached: the prefix of <paramref name="Position"/> tokens hashing to <paramref name="Hash"/>.</summary>
    private sealed record Tip(ulong[] Chain, int Position, ulong Hash, long Stamp);

    private sealed class NodeEntries
    {
        public readonly Dictionary<ulong, long> Blocks = [];
        public readonly Dictionary<ulong, Tip> Tips = [];
    }

    public PrefixIndex(int maxBlocksPerNode = 1 << 18) => _maxBlocksPerNode = Math.Max(16, maxBlocksPerNode);

    /// <summary>The chained hashes of the prompt's whole blocks of <paramref name="blockTokens"/> tokens.</summary>
    public static ulong[] Chain(ReadOnlySpan<int> tokens, int blockTokens)
    {
        var chain = new ulong[tokens.Length / blockTokens];
        ulong h = Seed;
        for (int b = 0; b < chain.Length; b++) chain[b] = h = Mix(h, tokens.Slice(b * blockTokens, blockTokens));
        return chain;
    }

    /// <summary>The hash of the first <paramref name="position"/> tokens, from the prompt's chain and the partial block after it.</summary>
    public static ulong PrefixHash(ReadOnlySpan<int> tokens, ulong[] chain, int position, int blockTokens)
    {
        int full = position / blockTokens;
        ulong h = full > 0 ? chain[full - 1] : Seed;
        // the position is mixed in, so a prefix ending on a block boundary never equals a longer one
        return Mix(h ^ (ulong)position, tokens[(full * blockTokens)..position]);
    }

    /// <summary>Where the tip of a prompt of <paramref name="promptTokens"/> tokens sits (0: too short to have one).</summary>
    public static int TipPosition(int promptTokens) => Math.Max(0, promptTokens - TailSlack);

    private const ulong Seed = 0x9E3779B97F4A7C15;

    private static ulong Mix(ulong h, ReadOnlySpan<int> tokens)
    {
        // FNV-1a over the token ids, seeded with the hash so far, then a full avalanche
        foreach (int t in tokens) h = (h ^ (uint)t) * 0x100000001B3;
        h ^= h >> 33; h *= 0xFF51AFD7ED558CCD; h ^= h >> 33; h *= 0xC4CEB9FE1A85EC53; h ^= h >> 33;
        return h;
    }

    /// <summary>
    /// What a node is believed to hold of a prompt, in tokens: the longest prefix it was sent (whole blocks), the longest
    /// sequence the prompt continues, and the most it shares with a sequence it does not continue; and how many sequences it holds.
    /// </summary>
    public readonly record struct Match(TNode Node, int OpenTokens, int ContinuedTokens, int SiblingTokens, int Held);

    public Match MatchOn(TNode node, ReadOnlySpan<int> prompt, ulong[] chain, int blockTokens)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var e)) return new Match(node, 0, 0, 0, 0);
            int open = 0;
            for (int d = chain.Length; d > 0; d--)
                if (e.Blocks.ContainsKey(chain[d - 1])) { open = d * blockTokens; break; }
            int continued = 0, sibling = 0;
            foreach (var tip in e.Tips.Values)
            {
                if (Continues(prompt, chain, tip, blockTokens)) continued = Math.Max(continued, tip.Position);
                else sibling = Math.Max(sibling, Shared(tip.Chain, chain) * blockTokens);
            }
            return new Match(node, open, continued, sibling, e.Tips.Count);
        }
    }

    /// <summary>Where a prompt's tip is and what it hashes to (0, 0: too short to continue).</summary>
    public static (int Position, ulong Hash) TipOf(ReadOnlySpan<int> prompt, ulong[] chain, int blockTokens)
    {
        int p = TipPosition(prompt.Length);
        return p == 0 ? (0, 0) : (p, PrefixHash(prompt, chain, p, blockTokens));
    }

    /// <summary>
    /// Notes that <paramref name="prompt"/> (with its block chain) went to <paramref name="node"/>, which keeps at most
    /// <paramref name="slots"/> sequences and gives the prompt a slot as the engine's scheduler does.
    /// </summary>
    public void Record(TNode node, ReadOnlySpan<int> prompt, ulong[] chain, int blockTokens, int slots)
    {
        var (tipPosition, tipHash) = TipOf(prompt, chain, blockTokens);
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node, out var e)) _nodes[node] = e = new NodeEntries();
            long stamp = ++_clock;
            foreach (ulong h in chain) e.Blocks[h] = stamp;
            // a continuation lands in its sequence's slot. A sibling sharing half of it is replaced only if its slot
            // was free at the time, which the index cannot know: it keeps the sibling (a wrong guess costs a prefill)
            var continued = new List<ulong>();
            foreach (var tip in e.Tips.Values)
                if (Continues(prompt, chain, tip, blockTokens)) continued.Add(tip.Hash);
            foreach (ulong h in continued) e.Tips.Remove(h);
            if (tipPosition > 0) e.Tips[tipHash] = new Tip(chain[..(tipPosition / blockTokens)], tipPosition, tipHash, stamp);
            while (e.Tips.Count > Math.Max(1, slots)) e.Tips.Remove(e.Tips.Values.MinBy(t => t.Stamp)!.Hash);
            if (e.Blocks.Count > _maxBlocksPerNode)
            {
                // forget the older half (the engine's own LRU has long evicted them)
                long cut = e.Blocks.Values.Order().ElementAt(e.Blocks.Count / 2);
                foreach (var k in e.Blocks.Where(kv => kv.Value <= cut).Select(kv => kv.Key).ToList()) e.Blocks.Remove(k);
            }
        }
    }

    /// <summary>Forgets a node (it left or died: whatever it cached is gone).</summary>
    public void Remove(TNode node)
    {
        lock (_lock) _nodes.Remove(node);
    }

    /// <summary>Blocks and sequence tips the index holds for <paramref name="node"/>.</summary>
    public (int Blocks, int Sequences) Size(TNode node)
    {
        lock (_lock) return _nodes.TryGetValue(node, out var e) ? (e.Blocks.Count, e.Tips.Count) : (0, 0);
    }

    private static bool Continues(ReadOnlySpan<int> prompt, ulong[] chain, Tip tip, int blockTokens) =>
        tip.Position <= prompt.Length && PrefixHash(prompt, chain, tip.Position, blockTokens) == tip.Hash;

    private static int Shared(ulong[] a, ulong[] b)
    {
        int n = Math.Min(a.Length, b.Length);
        // chained hashes: equal at depth d means equal all the way up to d
        for (int d = n; d > 0; d--) if (a[d - 1] == b[d - 1]) return d;
        return 0;
    }
}
