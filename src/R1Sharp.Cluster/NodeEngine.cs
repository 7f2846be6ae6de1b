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

    /// <summary>
    /// The identity of a node serving <paramref name="model"/>: the size of its file (all parts of a split model
    /// together) and a SHA-256 of everything before the tensor data (the metadata and tensor table) and of 16 samples
    /// of 4 KB spread over each file's data, so that two files of the same shape with other weights (another
    /// fine-tune, another quantization run) differ too.
    /// </summary>
    public static NodeIdentity Identify(LoadedModel model, string modelId, int contextSize, int slots, string name, string httpAddress)
    {
        var file = model.File;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        const int Samples = 16, SampleBytes = 4096;
        var sample = new byte[SampleBytes];
        for (int part = 0; part < file.Paths.Count; part++)
        {
            using var stream = new FileStream(file.Paths[part], FileMode.Open, FileAccess.Read, FileShare.Read);
            long start = 0, length = stream.Length;
            if (part == 0)
            {
                var header = new byte[file.DataOffset];
                stream.ReadExactly(header);
                sha.AppendData(header);
                start = file.DataOffset;
            }
            long data = length - start;
            for (int i = 0; i < Samples && data > 0; i++)
            {
                long at = start + (data - Math.Min(data, SampleBytes)) * i / (Samples - 1);
                stream.Position = at;
                int n = (int)Math.Min(SampleBytes, length - at);
                stream.ReadExactly(sample, 0, n);
                sha.AppendData(sample, 0, n);
            }
        }
        string hash = Convert.ToHexString(sha.GetHashAndReset()).ToLowerInvariant();
        return new NodeIdentity(name, httpAddress, modelId, file.FileSize, hash, contextSize, slots);
    }

    public void Dispose() => owned?.Dispose();
}
