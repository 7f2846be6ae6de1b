// Everything `r1sharp serve` can set, with the defaults the CLI documents.
using R1Sharp.Tensors;

namespace R1Sharp.Server;

public sealed record ServerOptions
{
    public required string ModelPath { get; init; }
    /// <summary>The id /v1/models lists and requests must name; default: the file name without .gguf.</summary>
    public string? ModelName { get; init; }
    /// <summary>An IP address or "localhost"; loopback unless told otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>When set, /v1/* requires "Authorization: Bearer KEY".</summary>
    public string? ApiKey { get; init; }
    /// <summary>Sequences decoded together (KV-cache slots).</summary>
    public int Parallel { get; init; } = 4;
    /// <summary>Context per slot in tokens; 0 uses min(the model's context, 4096).</summary>
    public int ContextSize { get; init; }
    /// <summary>Requests waiting for a slot before new ones get 429.</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>Largest request body; bigger ones get 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>How the KV cache stores keys (and values, unless <see cref="CacheTypeV"/>): F32, F16 (half the memory) or Q8_0.</summary>
    public GgmlType CacheType { get; init; } = GgmlType.F32;
    /// <summary>How the KV cache stores values; null: as <see cref="CacheType"/>.</summary>
    public GgmlType? CacheTypeV { get; init; }
    /// <summary>Worker threads for the forward pass; 0 uses every core.</summary>
    public int Threads { get; init; }
    /// <summary>
    /// Prompt tokens prefilled per step over all sequences (chunked prefill). 512, llama.cpp's ubatch: requests that
    /// arrive together are prefilled together, and a long prompt holds the running streams for one such chunk per step.
    /// </summary>
    public int PrefillChunk { get; init; } = DefaultPrefillChunk;

    public const int DefaultPrefillChunk = 512;

    /// <summary>Speculative decoding with this draft model (the target's vocabulary); loaded by the server, on the model's threads.</summary>
    public string? DraftModelPath { get; init; }
    /// <summary>Speculative decoding without a second model: "ngram" or "mtp"; null for none (or a draft model).</summary>
    public string? Speculation { get; init; }
    /// <summary>Most draft tokens verified per sequence and step.</summary>
    public int DraftMax { get; init; } = 8;
    /// <summary>A draft model or MTP head stops drafting when its most likely token is less likely than this.</summary>
    public float DraftPMin { get; init; } = Engine.DraftModelSource.DefaultPMin;

    /// <summary>
    /// After this long with no request in flight, one full collection gives the memory a burst left behind back to the
    /// system (<see cref="IdleTrimmer"/>); zero or less never does.
    /// </summary>
    public TimeSpan IdleTrimAfter { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>How long a shutdown lets running requests finish before cancelling them.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);
}
