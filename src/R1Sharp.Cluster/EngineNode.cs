// The Orleans face of a node's engine: one grain per silo, keyed by the silo's address and placed on that silo
// (NodePlacement), so any node can address the engine of any other. A forwarded job streams back as an
// IAsyncEnumerable of chunks; the caller disposing it (its client went away) cancels the job here.
// (A GrainService would be the other natural home, but in Orleans 10.4 a GrainService cannot return
// IAsyncEnumerable: the enumeration extension does not bind to system targets.)
using System.Runtime.CompilerServices;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime.Placement;
using R1Sharp.Engine;
using R1Sharp.Server;

namespace R1Sharp.Cluster;

[Alias("r1.IEngineNode")]
public interface IEngineNode : IGrainWithStringKey
{
    /// <summary>Runs a job on this node: first the admission chunk, then the engine's chunks.</summary>
    [Alias("Generate")]
    IAsyncEnumerable<WireChunk> Generate(WireJob job, CancellationToken ct = default);

    [Alias("GetIdentity")]
    Task<NodeIdentity> GetIdentity();

    [Alias("GetStatus")]
    Task<NodeStatus> GetStatus();

    /// <summary>Routes other nodes made (their prefix index entries), fire and forget.</summary>
    [OneWay, Alias("Learn")]
    Task Learn(RouteRecord[] routes);
}

[Reentrant, NodePlacement]
public sealed class EngineNode(NodeEngine engine, NodeDirectory directory) : Grain, IEngineNode
{
    public async IAsyncEnumerable<WireChunk> Generate(WireJob job, [EnumeratorCancellation] CancellationToken ct = default)
    {
        IAsyncEnumerable<JobChunk>? chunks = null;
        WireChunk refused = default;
        try
        {
            chunks = engine.Run(job.ToJob(), forwarded: true, ct);
        }
        catch (QueueFullException e) { refused = WireChunk.Refused(Admission.QueueFull, e.Message); }
        catch (InvalidOperationException e) { refused = WireChunk.Refused(Admission.ShuttingDown, e.Message); }
        catch (ArgumentException e) { refused = WireChunk.Refused(Admission.Invalid, e.Message); }
        if (chunks is null)
        {
            yield return refused;
            yield break;
        }
        yield return WireChunk.Admitted;
        await foreach (var c in chunks.WithCancellation(ct)) yield return WireChunk.From(c);
    }

    public Task<NodeIdentity> GetIdentity() => Task.FromResult(engine.Identity);

    public Task<NodeStatus> GetStatus() => Task.FromResult(engine.Status());

    public Task Learn(RouteRecord[] routes)
    {
        directory.Learn(routes);
        return Task.CompletedTask;
    }
}

/// <summary>Reaches the engine of a given node.</summary>
public sealed class EngineNodes(IGrainFactory grains)
{
    public IEngineNode On(SiloAddress node) => grains.GetGrain<IEngineNode>(node.ToParsableString());
}

/// <summary>Places a node's engine grain on the silo its key names, and nowhere else.</summary>
[GenerateSerializer, Immutable, SuppressReferenceTracking, Alias("r1.NodePlacement")]
public sealed class NodePlacement : PlacementStrategy
{
    public static NodePlacement Instance { get; } = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NodePlacementAttribute() : PlacementAttribute(NodePlacement.Instance);

internal sealed class NodePlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silo = SiloAddress.FromParsableString(target.GrainIdentity.Key.ToString()!);
        // membership, not only the grain-type manifest (which lags it by a moment when a node joins), says where it may go
        if (context.GetCompatibleSilos(target).Contains(silo) || membership.CurrentSnapshot.GetSiloStatus(silo) == SiloStatus.Active)
            return Task.FromResult(silo);
        // the node is gone: its engine (and its cache) cannot be activated anywhere else
        throw new SiloUnavailableException($"node {silo} is not an active member of the cluster");
    }
}
