// What a node knows of the others: Orleans membership (who is alive), each member's identity (checked against ours
// before any request goes there), its load (polled), and the shared prefix index (this node's routes are sent to
// the others in small batches; theirs arrive through Learn).
//
// Staleness: loads are up to StatusInterval old (plus the requests this node routed since, counted at once); routes
// of other nodes arrive within ShareInterval and a round trip, and never when a batch is lost with a dying node; the
// engine's own evictions are not reported, only mirrored (one sequence per slot, least recently used out). Each of
// these can send a request to a node that no longer holds its prefix: it costs a prefill, never a wrong answer.
using System.Collections.Concurrent;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace R1Sharp.Cluster;

public sealed class NodeDirectory : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly NodeEngine _engine;
    private readonly EngineNodes _nodes;
    private readonly IClusterMembershipService _membership;
    private readonly RoutingOptions _options;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<SiloAddress, Member> _members = new();
    private readonly Channel<RouteRecord> _outgoing = Channel.CreateUnbounded<RouteRecord>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];

    public NodeDirectory(NodeEngine engine, EngineNodes nodes, IClusterMembershipService membership, ILocalSiloDetails local,
        RoutingOptions options, ILogger<NodeDirectory> log)
    {
        _engine = engine;
        _nodes = nodes;
        _membership = membership;
        _options = options;
        _log = log;
        Self = local.SiloAddress;
        Index = new PrefixIndex<SiloAddress>(options.MaxBlocksPerNode);
        _members[Self] = new Member(Self, engine.Identity.Name) { Status = SiloStatus.Active, Identity = engine.Identity, Verified = true };
    }

    public SiloAddress Self { get; }
    public PrefixIndex<SiloAddress> Index { get; }
    public RoutingOptions Options => _options;

    /// <summary>A cluster member as this node sees it.</summary>
    public sealed class Member(SiloAddress silo, string name)
    {
        public SiloAddress Silo { get; } = silo;
        public string Name { get; set; } = name;
        public SiloStatus Status { get; set; }
        public NodeIdentity? Identity { get; set; }
        /// <summary>Why this node refuses to route to it (another model), if it does.</summary>
        public string? Mismatch { get; set; }
        public bool Verified { get; set; }
        public NodeStatus? Load { get; set; }
        /// <summary>Requests this node routed there since its load was last polled.</summary>
        public int Pending;
        /// <summary>1 while its identity is being asked for.</summary>
        public int Verifying;
        public int Slots => Load?.Slots ?? Identity?.Slots ?? 1;
        public int EstimatedLoad => (Load is { } l ? l.Running + l.Queued : 0) + Volatile.Read(ref Pending);
    }

    public IReadOnlyCollection<Member> Members => _members.Values.ToList();

    /// <summary>Nodes a request may go to: active, serving our model, accepting, and not in <paramref name="exclude"/>.</summary>
    public List<Member> Candidates(IReadOnlyCollection<SiloAddress>? exclude = null) =>
        _members.Values.Where(m => m.Status == SiloStatus.Active && m.Verified && m.Load?.Accepting != false
                                   && (exclude is null || !exclude.Contains(m.Silo))).ToList();

    public Member? Find(SiloAddress silo) => _members.GetValueOrDefault(silo);

    /// <summary>Records a route this node made and queues it for the others.</summary>
    public void Routed(SiloAddress node, int[] prompt, ulong[] chain)
    {
        if (_members.TryGetValue(node, out var m))
        {
            Interlocked.Increment(ref m.Pending);
            Index.Record(node, prompt, chain, _options.BlockTokens, m.Slots);
        }
        _outgoing.Writer.TryWrite(new RouteRecord(node, prompt));
    }

    /// <summary>Routes another node made.</summary>
    public void Learn(RouteRecord[] routes)
    {
        foreach (var r in routes)
            if (_members.TryGetValue(r.Node, out var m) && m.Status != SiloStatus.Dead)
                Index.Record(r.Node, r.Prompt, PrefixIndex<SiloAddress>.Chain(r.Prompt, _options.BlockTokens), _options.BlockTokens, m.Slots);
    }

    /// <summary>
    /// Compares our identity with every other active member's; returns the first mismatch as a one-line reason, or null.
    /// A node that finds one must not serve (the others already refuse to route to it).
    /// </summary>
    public async Task<string?> CheckJoinAsync(CancellationToken ct)
    {
        await _membership.Refresh();
        foreach (var m in _membership.CurrentSnapshot.Members.Values)
        {
            if (m.SiloAddress.Equals(Self) || m.Status != SiloStatus.Active) continue;
            NodeIdentity other;
            try
            {
                other = await _nodes.On(m.SiloAddress).GetIdentity().WaitAsync(TimeSpan.FromSeconds(10), ct);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                continue; // a member we cannot reach is probably dying: membership will say so
            }
            if (_engine.Identity.Mismatch(other) is { } why) return $"refusing to join the cluster: {why}";
        }
        return null;
    }

    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(NodeDirectory), ServiceLifecycleStage.Active, ct => Start(), ct => StopAsync());

    private Task Start()
    {
        _loops.Add(Task.Run(() => WatchMembershipAsync(_stop.Token)));
        _loops.Add(Task.Run(() => PollLoadsAsync(_stop.Token)));
        _loops.Add(Task.Run(() => ShareRoutesAsync(_stop.Token)));
        return Task.CompletedTask;
    }

    private async Task StopAsync()
    {
        _stop.Cancel();
        _outgoing.Writer.TryComplete();
        try { await Task.WhenAll(_loops).WaitAsync(TimeSpan.FromSeconds(5)); }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException) { }
    }

    private async Task WatchMembershipAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var snapshot in _membership.MembershipUpdates.WithCancellation(ct))
                foreach (var cm in snapshot.Members.Values)
                {
                    if (cm.SiloAddress.Equals(Self)) continue;
                    var m = _members.GetOrAdd(cm.SiloAddress, s => new Member(s, cm.Name));
                    var was = m.Status;
                    m.Status = cm.Status;
                    m.Name = cm.Name;
                    if (cm.Status == SiloStatus.Dead && was != SiloStatus.Dead)
                    {
                        Index.Remove(cm.SiloAddress);
                        if (was != SiloStatus.None) _log.LogWarning("node {Name} ({Silo}) left the cluster", cm.Name, cm.SiloAddress);
                    }
                    if (cm.Status == SiloStatus.Active && m.Identity is null && Interlocked.Exchange(ref m.Verifying, 1) == 0) _ = VerifyAsync(m, ct);
                }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    private async Task VerifyAsync(Member m, CancellationToken ct)
    {
        // until it answers or leaves: a node that has just joined may not be reachable for a moment
        for (int attempt = 0; m.Identity is null && m.Status == SiloStatus.Active && !ct.IsCancellationRequested; attempt++)
        {
            try
            {
                var id = await _nodes.On(m.Silo).GetIdentity().WaitAsync(TimeSpan.FromSeconds(5), ct);
                m.Mismatch = _engine.Identity.Mismatch(id);
                m.Identity = id;
                m.Verified = m.Mismatch is null;
                if (m.Mismatch is null) _log.LogInformation("node {Name} joined: {Http}", id.Name, id.HttpAddress);
                else _log.LogWarning("not routing to node {Name}: {Why}", id.Name, m.Mismatch);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(2000, 100 << Math.Min(attempt, 5))), ct);
            }
        }
    }

    private async Task PollLoadsAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(_options.StatusInterval);
        try
        {
            do
            {
                var polls = _members.Values.Where(m => m.Status == SiloStatus.Active && m.Verified).Select(async m =>
                {
                    try
                    {
                        var status = m.Silo.Equals(Self) ? _engine.Status()
                            : await _nodes.On(m.Silo).GetStatus().WaitAsync(TimeSpan.FromSeconds(2), ct);
                        m.Load = status;
                        Volatile.Write(ref m.Pending, 0);
                    }
                    catch (Exception e) when (e is not OperationCanceledException) { }
                });
                await Task.WhenAll(polls);
            }
            while (await timer.WaitForNextTickAsync(ct));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }

    private async Task ShareRoutesAsync(CancellationToken ct)
    {
        var batch = new List<RouteRecord>();
        try
        {
            while (await _outgoing.Reader.WaitToReadAsync(ct))
            {
                await Task.Delay(_options.ShareInterval, ct);
                batch.Clear();
                while (_outgoing.Reader.TryRead(out var r)) batch.Add(r);
                var routes = batch.ToArray();
                foreach (var m in _members.Values)
                {
                    if (m.Silo.Equals(Self) || m.Status != SiloStatus.Active || !m.Verified) continue;
                    try { _ = _nodes.On(m.Silo).Learn(routes); }
                    catch (Exception e) when (e is not OperationCanceledException) { }
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { }
    }
}
