// Everything `r1sharp serve --cluster` can set: how the node finds the cluster (Orleans membership), its ports and
// name, how fast a lost node is detected, and the routing policy with SGLang's cache_aware thresholds.
using System.Net;

namespace R1Sharp.Cluster;

public sealed record ClusterNodeOptions
{
    /// <summary>
    /// "redis://HOST:PORT", or "localhost[:PORT]" (one machine, development: the node whose silo port is PORT, 11111 by
    /// default, holds the membership, and the cluster lives as long as it does).
    /// </summary>
    public string Membership { get; init; } = "localhost";
    /// <summary>Port of Orleans' silo-to-silo traffic.</summary>
    public int SiloPort { get; init; } = DefaultSiloPort;
    /// <summary>Port Orleans clients connect to.</summary>
    public int GatewayPort { get; init; } = 30000;
    /// <summary>The node's name in /v1/cluster and the logs; default: the machine's name and the silo port.</summary>
    public string? NodeName { get; init; }
    /// <summary>Nodes with the same cluster id (and membership store) form one cluster.</summary>
    public string ClusterId { get; init; } = "r1sharp";
    /// <summary>How long a liveness probe may take before it counts as missed.</summary>
    public TimeSpan ProbeTimeout { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Missed probes after which a node is suspected (and, with a second vote, declared dead).</summary>
    public int MissedProbes { get; init; } = 2;
    public RoutingOptions Routing { get; init; } = new();

    /// <summary>Orleans' default silo port; under localhost membership the node listening on it is the primary.</summary>
    public const int DefaultSiloPort = 11111;

    /// <summary>The Redis endpoint of a redis:// membership, or null for localhost; throws ArgumentException for anything else.</summary>
    public string? RedisEndpoint()
    {
        if (LocalhostPrimaryPort() is not null) return null;
        if (Membership.StartsWith("redis://", StringComparison.Ordinal)
            && Uri.TryCreate(Membership, UriKind.Absolute, out var uri) && uri.Host.Length > 0 && uri.Port > 0
            && (uri.AbsolutePath is "" or "/"))
            return $"{uri.Host}:{uri.Port}";
        throw new ArgumentException($"--cluster-membership must be redis://HOST:PORT or localhost[:PORT] (got '{Membership}')");
    }

    /// <summary>Under localhost membership, the silo port of the node holding the membership; else null.</summary>
    public int? LocalhostPrimaryPort() =>
        Membership == "localhost" ? DefaultSiloPort
        : Membership.StartsWith("localhost:", StringComparison.Ordinal) && int.TryParse(Membership["localhost:".Length..], out int p) && p is > 0 and < 65536 ? p
        : null;

    /// <summary>Checks the options that need no model; throws ArgumentException with a one-line cause.</summary>
    public void Check()
    {
        RedisEndpoint();
        if (SiloPort is < 1 or > 65535) throw new ArgumentException($"--silo-port must be between 1 and 65535 (got {SiloPort})");
        if (GatewayPort is < 1 or > 65535) throw new ArgumentException($"--gateway-port must be between 1 and 65535 (got {GatewayPort})");
        if (SiloPort == GatewayPort) throw new ArgumentException($"--silo-port and --gateway-port must differ (both {SiloPort})");
        if (NodeName is "") throw new ArgumentException("--node-name must not be empty");
        if (string.IsNullOrWhiteSpace(ClusterId)) throw new ArgumentException("--cluster-id must not be empty");
        if (ProbeTimeout <= TimeSpan.Zero) throw new ArgumentException("the probe timeout must be positive");
        if (MissedProbes < 1) throw new ArgumentException($"the missed-probe limit must be at least 1 (got {MissedProbes})");
        Routing.Check();
    }

    /// <summary>The address other nodes reach this one at: the HTTP host when it is a specific address, else Orleans' choice.</summary>
    public static IPAddress? AdvertisedAddress(IPAddress httpHost) =>
        httpHost.Equals(IPAddress.Any) || httpHost.Equals(IPAddress.IPv6Any) ? null : httpHost;
}

public enum RoutePolicy
{
    /// <summary>SGLang's cache_aware: the node holding the longest cached prefix, unless it is much busier than the least loaded.</summary>
    Affinity,
    /// <summary>A node drawn at random (the baseline the benchmark compares with).</summary>
    Random,
}

public sealed record RoutingOptions
{
    public RoutePolicy Policy { get; init; } = RoutePolicy.Affinity;
    /// <summary>Tokens per block of the prefix index (prompts are matched in whole blocks).</summary>
    public int BlockTokens { get; init; } = 64;
    /// <summary>Smallest share of the prompt a cached prefix must cover to pull the request to its node (SGLang's cache_threshold).</summary>
    public double CacheThreshold { get; init; } = 0.3;
    /// <summary>
    /// A node is too busy for affinity when its load (running + queued requests) exceeds the least loaded node's by
    /// more than this (SGLang's balance_abs_threshold, 64 there for GPU workers running hundreds of requests)...
    /// </summary>
    public int BalanceAbsolute { get; init; } = 8;
    /// <summary>...and is more than this many times it (SGLang's balance_rel_threshold).</summary>
    public double BalanceRelative { get; init; } = 1.5;
    /// <summary>Blocks the index keeps per node before forgetting the least recently used.</summary>
    public int MaxBlocksPerNode { get; init; } = 1 << 18;
    /// <summary>How often each node asks the others for their load.</summary>
    public TimeSpan StatusInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>How long routes are batched before they are sent to the other nodes.</summary>
    public TimeSpan ShareInterval { get; init; } = TimeSpan.FromMilliseconds(20);

    public void Check()
    {
        if (BlockTokens < 1) throw new ArgumentException($"--route-block must be at least 1 (got {BlockTokens})");
        if (!(CacheThreshold >= 0 && CacheThreshold <= 1)) throw new ArgumentException($"--route-cache-threshold must be in [0, 1] (got {CacheThreshold})");
        if (BalanceAbsolute < 0) throw new ArgumentException($"--route-balance-abs must be >= 0 (got {BalanceAbsolute})");
        if (!(BalanceRelative >= 1)) throw new ArgumentException($"--route-balance-rel must be >= 1 (got {BalanceRelative})");
    }
}
