// The routing counters each node adds to its /metrics (the server's Prometheus registry).
using Orleans.Runtime;
using Prometheus;

namespace R1Sharp.Cluster;

public sealed class ClusterMetrics
{
    private readonly Counter _routed, _retries, _lost;

    public ClusterMetrics(CollectorRegistry registry, Func<NodeDirectory> directory)
    {
        var f = Metrics.WithCustomRegistry(registry);
        _routed = f.CreateCounter("r1sharp_cluster_routed_total",
            "Requests this node routed: target local (its own engine) or forwarded; reason prefix_hit (the node holds the prompt's sequence), placement, balance or random.",
            new CounterConfiguration { LabelNames = ["target", "reason"] });
        _retries = f.CreateCounter("r1sharp_cluster_route_retries_total", "Routes tried again on another node because the chosen one could not take the request (full, shutting down, unreachable).");
        _lost = f.CreateCounter("r1sharp_cluster_lost_total", "Requests that ended with an error because the node running them was lost.");
        var members = f.CreateGauge("r1sharp_cluster_members", "Cluster members this node routes to (active, serving the same model).");
        var blocks = f.CreateGauge("r1sharp_cluster_index_blocks", "Prefix-index blocks this node holds, over all nodes.");
        registry.AddBeforeCollectCallback(() =>
        {
            var d = directory();
            members.Set(d.Candidates().Count);
            blocks.Set(d.Members.Sum(m => d.Index.Size(m.Silo).Blocks));
        });
    }

    public void Routed(bool local, RouteReason reason) => _routed.WithLabels(local ? "local" : "forwarded", ReasonLabel(reason)).Inc();

    public void Retried() => _retries.Inc();

    public void Lost() => _lost.Inc();

    public static string ReasonLabel(RouteReason r) => r switch
    {
        RouteReason.PrefixHit => "prefix_hit",
        RouteReason.Placement => "placement",
        RouteReason.Balance => "balance",
        _ => "random",
    };
}
