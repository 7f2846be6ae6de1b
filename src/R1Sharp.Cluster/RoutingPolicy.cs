// The routing decision, apart from Orleans so it can be tested on its own: SGLang's cache_aware policy over the
// prefix index, with the placement of new sequences suited to an engine that keeps one sequence per slot.
namespace R1Sharp.Cluster;

/// <summary>Why a request went where it went (the /metrics label).</summary>
public enum RouteReason
{
    /// <summary>The node holds the sequence this prompt continues, over the cache threshold.</summary>
    PrefixHit,
    /// <summary>A new sequence, placed where it overwrites no sibling, on the node holding fewest sequences.</summary>
    Placement,
    /// <summary>The cache's choice was much busier than the least loaded node, which took it instead.</summary>
    Balance,
    /// <summary>Drawn at random (the random policy).</summary>
    Random,
}

/// <summary>A node the router may choose: what the index believes it holds of the prompt, and its load.</summary>
public readonly record struct Candidate<TNode>(PrefixIndex<TNode>.Match Match, int Load) where TNode : notnull
{
    public TNode Node => Match.Node;
}

public static class RoutingPolicy
{
    public static (TNode Node, RouteReason Reason) Choose<TNode>(IReadOnlyList<Candidate<TNode>> nodes, int promptTokens,
        RoutingOptions o, Random random) where TNode : notnull
    {
        if (nodes.Count == 0) throw new ArgumentException("no node to route to");
        if (o.Policy == RoutePolicy.Random) return (nodes[random.Next(nodes.Count)].Node, RouteReason.Random);

        int minLoad = nodes.Min(n => n.Load);
        // ties are broken at random, so equal nodes share new work
        var shuffled = nodes.OrderBy(_ => random.Next()).ToList();
        var best = shuffled.OrderByDescending(n => n.Match.ContinuedTokens).ThenBy(n => n.Load).First();
        (Candidate<TNode> Node, RouteReason Reason) pick;
        if (best.Match.ContinuedTokens > 0 && best.Match.ContinuedTokens >= o.CacheThreshold * promptTokens)
            pick = (best, RouteReason.PrefixHit);
        else
            // SGLang sends a weak match to the worker with the smallest tree; here: where no sibling's slot is taken,
            // then the fewest sequences held, then the longest shared prefix (a shared system prompt or document)
            pick = (shuffled.OrderBy(n => n.Match.SiblingTokens > 0 ? 1 : 0).ThenBy(n => n.Match.Held)
                .ThenByDescending(n => n.Match.OpenTokens).ThenBy(n => n.Load).First(), RouteReason.Placement);
        if (Overloaded(pick.Node.Load, minLoad, o))
            return (shuffled.First(n => n.Load == minLoad).Node, RouteReason.Balance);
        return (pick.Node.Node, pick.Reason);
    }

    /// <summary>SGLang's imbalance test: more than the absolute threshold above the least loaded, and more than the relative one times it.</summary>
    public static bool Overloaded(int load, int minLoad, RoutingOptions o) =>
        load - minLoad > o.BalanceAbsolute && load > minLoad * o.BalanceRelative;
}
