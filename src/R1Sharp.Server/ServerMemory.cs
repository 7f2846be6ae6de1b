// What `serve` will hold in memory, checked against what the system can give before anything is loaded: the KV
// cache of every slot (anonymous memory, never paged out: a server that cannot hold it is OOM-killed later, in the
// middle of requests) and the weights when they are copied into memory. Weights that stay in the file mapping
// (--mmap, or a file too large to copy) are page cache the kernel can evict and reread, so they are not counted.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Server;

public static class ServerMemory
{
    /// <summary>The bytes the server will allocate and the part that is the KV cache.</summary>
    public sealed record Need(long Weights, long KvCache, long Logits, int Context)
    {
        public long Total => Weights + KvCache + Logits;
    }

    /// <summary>The memory serving <paramref name="info"/> with <paramref name="o"/> needs; weights count only when they are copied.</summary>
    public static Need Estimate(ServerOptions o, ModelInfo info, long fileSize, int vocabSize, bool mmap, long? available)
    {
        int ctx = o.ContextSize > 0 ? o.ContextSize : Math.Min(info.ContextLength, 4096);
        int bytesPerValue = o.CacheType == GgmlType.F16 ? 2 : 4;
        long kv = info.KvBytesPerToken(bytesPerValue) * ctx * o.Parallel;
        long logits = (long)o.Parallel * vocabSize * sizeof(float);
        bool copied = !mmap && !(available is long a && fileSize > a * LoadedModel.MaxCopyShare);
        return new Need(copied ? fileSize : 0, kv, logits, ctx);
    }

    /// <summary>Throws InvalidOperationException (one line saying what does not fit and what to change) when the need is past <paramref name="available"/>.</summary>
    public static void Check(ServerOptions o, ModelInfo info, long fileSize, int vocabSize, bool mmap, long? available)
    {
        if (available is not long a) return; // not Linux: nothing to check against
        var need = Estimate(o, info, fileSize, vocabSize, mmap, available);
        if (need.Total <= a) return;
        string weights = need.Weights > 0 ? $"the weights copied into memory ({Gb(need.Weights)}) + " : "";
        string cache = o.CacheType == GgmlType.F16 ? "F16" : "F32";
        throw new InvalidOperationException(
            $"serve needs {Gb(need.Total)}: {weights}the KV cache for {o.Parallel} slots x {need.Context} tokens in {cache} ({Gb(need.KvCache)}), " +
            $"but only {Gb(a)} of memory is available (MemAvailable); lower --parallel or --ctx" +
            (o.CacheType == GgmlType.F16 ? "" : ", use --cache-type f16") + (need.Weights > 0 ? ", or --mmap to leave the weights in the page cache" : ""));
    }

    private static string Gb(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F1} GiB" : $"{bytes / (double)(1 << 20):F0} MiB";
}
