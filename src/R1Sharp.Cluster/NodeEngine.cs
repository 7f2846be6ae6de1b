// One node's engine replica as the cluster sees it: its scheduler, what it serves (the identity nodes compare at
// join), and the figures /v1/cluster shows. Local and forwarded jobs both run through here.
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Prometheus;
using R1Sharp.Engine;
using R1Sharp.Server;

namespace R1Sharp.Cluster;

public sealed class NodeEngine(Scheduler scheduler, NodeIdentity identity, CollectorRegistry registry, IDisposable? owned = null) : IDisposable
{
    private long _jobs, _forwarded, _promptTokens, _cachedTokens;

    public Scheduler Scheduler { get; } = scheduler;
    public NodeIdentity Identity { get; private set; } = identity;
    /// <summary>Where /metrics reads from (the server's registry on a serving node).</summary>
    public CollectorRegistry Registry { get; } = registry;

    /// <summary>Sets the HTTP address once Kestrel has bound it (port 0 picks one).</summary>
    public void SetHttpAddress(string address) => Identity = Identity with { HttpAddress = address };

    /// <summary>Submits <paramref name="job"/> here (throwing as Scheduler.Submit does) and counts its cache figures.</summary>
    public IAsyncEnumerable<JobChunk> Run(GenerationJob job, bool forwarded, CancellationToken ct)
    {
        var chunks = LocalBackend.Run(Scheduler, job, ct);
        Interlocked.Increment(ref _jobs);
        if (forwarded) Interlocked.Increment(ref _forwarded);
        return Count(chunks, ct);
    }

    private async IAsyncEnumerable<JobChunk> Count(IAsyncEnumerable<JobChunk> chunks, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var c in chunks.WithCancellation(ct))
        {
            if (c.Chunk.Usage is { } u)
            {
                Interlocked.Add(ref _promptTokens, u.PromptTokens);
                Interlocked.Add(ref _cachedTokens, u.CachedPromptTokens);
            }
            yield return c;
        }
    }

    public NodeStatus Status() => new(Scheduler.Options.Slots, Scheduler.Running, Scheduler.Queued, Scheduler.Accepting,
        Interlocked.Read(ref _jobs), Interlocked.Read(ref _forwarded), Interlocked.Read(ref _promptTokens), Interlocked.Read(ref _cachedTokens), Identity.HttpAddress);

    /// <summary>The identity of a node serving <paramref name="model"/>: file size and a hash of everything before the tensor data.</summary>
    public static NodeIdentity Identify(LoadedModel model, string modelId, int contextSize, int slots, string name, string httpAddress)
    {
        var file = model.File;
        using var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var header = new byte[file.DataOffset];
        stream.ReadExactly(header);
        string hash = Convert.ToHexString(SHA256.HashData(header)).ToLowerInvariant();
        return new NodeIdentity(name, httpAddress, modelId, file.FileSize, hash, contextSize, slots);
    }

    public void Dispose() => owned?.Dispose();
}
