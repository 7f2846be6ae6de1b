// The cluster's backend for the serving layer: picks the node for each job (RoutingPolicy over the prefix index
// and the polled loads), runs it here or forwards it to that node's engine through Orleans, and streams the chunks
// back. A node that cannot be reached before it accepted the job is skipped and the next choice tried; a node lost
// while it runs the job ends the job's stream with NodeUnavailableException (a 503 or an SSE error event).
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using R1Sharp.Engine;
using R1Sharp.Server;

namespace R1Sharp.Cluster;

public sealed class ClusterRouter(NodeEngine engine, NodeDirectory directory, EngineNodes nodes, ClusterMetrics metrics, ILogger<ClusterRouter> log)
    : IGenerationBackend
{
    /// <summary>Nodes tried per job before giving up: the first choice and, if it cannot take the job, others.</summary>
    private const int MaxAttempts = 3;

    private readonly Random _random = new();
    private readonly Lock _randomLock = new();

    /// <summary>Where the job would go now, without sending it (tests, and the decision the router takes).</summary>
    public (SiloAddress Node, RouteReason Reason) Choose(int[] prompt, IReadOnlyCollection<SiloAddress>? exclude = null) =>
        Choose(prompt, PrefixIndex<SiloAddress>.Chain(prompt, directory.Options.BlockTokens), exclude);

    private (SiloAddress Node, RouteReason Reason) Choose(int[] prompt, ulong[] chain, IReadOnlyCollection<SiloAddress>? exclude)
    {
        var o = directory.Options;
        var candidates = directory.Candidates(exclude)
            .Select(m => new Candidate<SiloAddress>(directory.Index.MatchOn(m.Silo, prompt, chain, o.BlockTokens), m.EstimatedLoad)).ToList();
        if (candidates.Count == 0) throw new NodeUnavailableException("no node of the cluster can take the request (none is alive and serving this model)");
        lock (_randomLock) return RoutingPolicy.Choose(candidates, prompt.Length, o, _random);
    }

    public async ValueTask<IAsyncEnumerable<JobChunk>> SubmitAsync(GenerationJob job, CancellationToken ct)
    {
        var o = directory.Options;
        var prompt = job.Request.Prompt;
        var chain = PrefixIndex<SiloAddress>.Chain(prompt, o.BlockTokens);
        var tried = new List<SiloAddress>();
        Exception? last = null;
        while (tried.Count < MaxAttempts)
        {
            (SiloAddress node, RouteReason reason) choice;
            try { choice = Choose(prompt, chain, tried); }
            catch (NodeUnavailableException) when (last is not null) { break; }
            var (node, reason) = choice;
            tried.Add(node);
            // noted before the job is sent, so the next decision (here, and soon on the other nodes) sees it; if the
            // node does not take the job the entry is wrong, which costs a later prefill at most
            directory.Routed(node, prompt, chain);
            try
            {
                IAsyncEnumerable<JobChunk> stream;
                if (node.Equals(directory.Self))
                    stream = engine.Run(job, forwarded: false, ct);
                else
                    stream = await ForwardAsync(node, job, ct);
                metrics.Routed(node.Equals(directory.Self), reason);
                return stream;
            }
            catch (Exception e) when (e is QueueFullException or NodeUnavailableException
                                      || (e is InvalidOperationException && !ct.IsCancellationRequested))
            {
                // the node could not take it (full, shutting down, unreachable): nothing was generated, try the next
                last = e;
                metrics.Retried();
                log.LogDebug("node {Node} did not take a job: {Why}", node, e.Message);
            }
        }
        throw last ?? new NodeUnavailableException("no node of the cluster can take the request");
    }

    /// <summary>Starts the job on <paramref name="node"/> and waits for its admission.</summary>
    private async Task<IAsyncEnumerable<JobChunk>> ForwardAsync(SiloAddress node, GenerationJob job, CancellationToken ct)
    {
        var e = nodes.On(node).Generate(WireJob.From(job), ct).GetAsyncEnumerator(ct);
        try
        {
            if (!await e.MoveNextAsync()) throw new NodeUnavailableException($"node {Name(node)} ended the job without an answer");
            var admission = e.Current;
            if (admission.Admission != Admission.Accepted) throw admission.RefusalException();
            return Relay(node, e, ct);
        }
        catch (Exception x)
        {
            await DisposeQuietly(e);
            if (x is OperationCanceledException && ct.IsCancellationRequested) throw;
            if (IsNodeLoss(x)) throw new NodeUnavailableException($"node {Name(node)} cannot be reached: {x.Message}", x);
            throw;
        }
    }

    private async IAsyncEnumerable<JobChunk> Relay(SiloAddress node, IAsyncEnumerator<WireChunk> e, [EnumeratorCancellation] CancellationToken ct)
    {
        bool lost = false;
        try
        {
            while (true)
            {
                try
                {
                    if (!await e.MoveNextAsync()) yield break;
                }
                catch (Exception x) when (!ct.IsCancellationRequested)
                {
                    // whatever broke the stream (the node declared dead, its connection gone, its enumerator lost with
                    // it), the client gets a clean error, not a cut connection
                    lost = true;
                    metrics.Lost();
                    throw new NodeUnavailableException($"the node running this request ({Name(node)}) was lost: {x.GetType().Name}", x);
                }
                yield return e.Current.ToChunk();
            }
        }
        finally
        {
            // a lost node cannot answer the release: do not hold the client's response on it
            if (lost) _ = DisposeQuietly(e);
            else await DisposeQuietly(e);
        }
    }

    private string Name(SiloAddress node) => directory.Find(node)?.Name ?? node.ToString();

    private static bool IsNodeLoss(Exception x) => x is SiloUnavailableException or OrleansMessageRejectionException
        or Orleans.Runtime.Messaging.ConnectionFailedException or TimeoutException or OrleansException or EnumerationAbortedException;

    private static async ValueTask DisposeQuietly(IAsyncEnumerator<WireChunk> e)
    {
        try { await e.DisposeAsync(); }
        catch (Exception) { } // the node is gone or the job already ended: nothing left to release
    }
}
