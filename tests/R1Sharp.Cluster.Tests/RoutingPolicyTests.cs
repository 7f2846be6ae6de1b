// The routing decision and the prefix index on their own (no Orleans): a follow-up goes to the node holding its
// conversation, a new conversation avoids the slots of its siblings, a busy node loses its affinity, and the
// index mirrors the engine's one sequence per slot.
using R1Sharp.Cluster;

namespace R1Sharp.Cluster.Tests;

public sealed class RoutingPolicyTests
{
    private const int B = 16;
    private static readonly RoutingOptions Options = new() { BlockTokens = B };

    private static int[] Tokens(int n, int salt) => Enumerable.Range(0, n).Select(i => (i * 31 + salt * 977) % 5000 + 1).ToArray();

    private static (string Node, RouteReason Reason) Route(PrefixIndex<string> index, int[] prompt, Dictionary<string, int> loads, RoutingOptions? o = null, int seed = 1)
    {
        var chain = PrefixIndex<string>.Chain(prompt, B);
        var candidates = loads.Select(kv => new Candidate<string>(index.MatchOn(kv.Key, prompt, chain, B), kv.Value)).ToList();
        var (node, reason) = RoutingPolicy.Choose(candidates, prompt.Length, o ?? Options, new Random(seed));
        index.Record(node, prompt, chain, B, slots: 4);
        return (node, reason);
    }

    private static Dictionary<string, int> Idle() => new() { ["a"] = 0, ["b"] = 0, ["c"] = 0 };

    [Fact]
    public void ChainedBlockHashesNameWholePrefixes()
    {
        int[] x = Tokens(50, 1), y = [.. x[..40], .. Tokens(10, 2)];
        ulong[] cx = PrefixIndex<string>.Chain(x, B), cy = PrefixIndex<string>.Chain(y, B);
        Assert.Equal(3, cx.Length); // 50 tokens: three whole blocks of 16
        Assert.Equal(cx[..2], cy[..2]);
        Assert.NotEqual(cx[2], cy[2]); // they part at token 40, inside the third block
        // a prefix hash at a position inside a block tells the two apart exactly there
        Assert.Equal(PrefixHash(x, 40), PrefixHash(y, 40));
        Assert.NotEqual(PrefixHash(x, 41), PrefixHash(y, 41));
        Assert.NotEqual(PrefixHash(x, 32), PrefixHash(x, 33));
    }

    private static ulong PrefixHash(int[] t, int p) => PrefixIndex<string>.PrefixHash(t, PrefixIndex<string>.Chain(t, B), p, B);

    [Fact]
    public void FollowUpTurnsGoWhereTheirConversationIs()
    {
        var index = new PrefixIndex<string>();
        int[] system = Tokens(40, 7);
        var prompts = Enumerable.Range(0, 3).Select(i => (int[])[.. system, .. Tokens(20, 10 + i)]).ToArray();
        var homes = prompts.Select(p => Route(index, p, Idle()).Node).ToArray();
        // three conversations sharing a system prompt: spread, none overwrites a sibling's slot
        Assert.Equal(3, homes.Distinct().Count());
        for (int i = 0; i < 3; i++)
        {
            // the next turn: the previous prompt less its last 2 tokens (the R1 template's "<think>\n"), an answer, a question
            int[] next = [.. prompts[i][..^2], .. Tokens(12, 20 + i), .. Tokens(15, 30 + i)];
            var (node, reason) = Route(index, next, Idle(), seed: 100 + i);
            Assert.Equal(homes[i], node);
            Assert.Equal(RouteReason.PrefixHit, reason);
        }
    }

    [Fact]
    public void ABusyNodeLosesItsAffinityToTheLeastLoaded()
    {
        var index = new PrefixIndex<string>();
        int[] first = Tokens(60, 3);
        string home = Route(index, first, Idle()).Node;
        int[] next = [.. first[..^2], .. Tokens(30, 4)];
        var loads = Idle();
        loads[home] = 9; // 9 - 0 > 8 and 9 > 0 * 1.5
        var (node, reason) = Route(index, next, loads);
        Assert.NotEqual(home, node);
        Assert.Equal(RouteReason.Balance, reason);
        // within the thresholds it stays
        var index2 = new PrefixIndex<string>();
        home = Route(index2, first, Idle()).Node;
        loads = new() { ["a"] = 4, ["b"] = 4, ["c"] = 4 };
        loads[home] = 12; // 8 above the least: not more than the absolute threshold
        Assert.Equal((home, RouteReason.PrefixHit), Route(index2, next, loads));
    }

    [Fact]
    public void AMatchBelowTheCacheThresholdIsPlacedAfresh()
    {
        var index = new PrefixIndex<string>();
        int[] first = Tokens(30, 5);
        string home = Route(index, first, Idle()).Node;
        int[] next = [.. first, .. Tokens(100, 6)]; // continues 22 of 130 tokens: under 0.3
        var (_, reason) = Route(index, next, Idle(), seed: 3);
        Assert.Equal(RouteReason.Placement, reason);
        var o = Options with { CacheThreshold = 0.1 };
        index = new PrefixIndex<string>();
        home = Route(index, first, Idle()).Node;
        Assert.Equal((home, RouteReason.PrefixHit), Route(index, next, Idle(), o, seed: 3));
    }

    [Fact]
    public void TheIndexKeepsOneSequencePerSlotLeastRecentlyUsedOut()
    {
        var index = new PrefixIndex<string>();
        var prompts = Enumerable.Range(0, 6).Select(i => Tokens(40, 50 + i)).ToArray();
        foreach (var p in prompts) index.Record("a", p, PrefixIndex<string>.Chain(p, B), B, slots: 4);
        Assert.Equal(4, index.Size("a").Sequences);
        Assert.Equal(0, Continued(index, prompts[0]));
        Assert.Equal(0, Continued(index, prompts[1]));
        Assert.Equal(40 - PrefixIndex<string>.TailSlack, Continued(index, prompts[5]));
        // a follow-up replaces its own sequence, it does not take another slot
        int[] next = [.. prompts[5], .. Tokens(20, 99)];
        index.Record("a", next, PrefixIndex<string>.Chain(next, B), B, slots: 4);
        Assert.Equal(4, index.Size("a").Sequences);
        Assert.Equal(PrefixIndex<string>.TipPosition(next.Length), Continued(index, [.. next, 1, 2]));
        index.Remove("a");
        Assert.Equal((0, 0), index.Size("a"));
    }

    private static int Continued(PrefixIndex<string> index, int[] prompt) =>
        index.MatchOn("a", prompt, PrefixIndex<string>.Chain(prompt, B), B).ContinuedTokens;

    [Fact]
    public void RandomPolicySpreadsOverAllNodes()
    {
        var index = new PrefixIndex<string>();
        var seen = Enumerable.Range(0, 60).Select(i => Route(index, Tokens(40, 1), Idle(), Options with { Policy = RoutePolicy.Random }, seed: i)).ToList();
        Assert.All(seen, s => Assert.Equal(RouteReason.Random, s.Reason));
        Assert.Equal(3, seen.Select(s => s.Node).Distinct().Count());
    }
}
