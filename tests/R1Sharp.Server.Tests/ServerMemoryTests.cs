// serve's memory check: the KV cache of every slot and the weights' copy against MemAvailable, refused before loading
// with one line that says what does not fit and what to change.
using R1Sharp.Formats;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Server.Tests;

public sealed class ServerMemoryTests
{
    private static (ModelInfo Info, long FileSize, int Vocab) Default()
    {
        string model = Directory.GetFiles(RepoPaths.Get("models"), "*.gguf").OrderBy(p => p).First();
        using var f = GgufFile.Open(model);
        return (ModelInfo.From(f), f.FileSize, f.GetStringArray("tokenizer.ggml.tokens")!.Length);
    }

    [Fact]
    public void TheEstimateIsTheKvCacheOfEverySlotPlusTheCopiedWeights()
    {
        var (info, size, vocab) = Default();
        var o = new ServerOptions { ModelPath = "m.gguf", Parallel = 3, ContextSize = 200, CacheType = GgmlType.F16 };
        var copied = ServerMemory.Estimate(o, info, size, vocab, mmap: false, available: 1L << 40);
        Assert.Equal(info.KvBytesPerToken(2) * 200 * 3, copied.KvCache);
        Assert.Equal(size, copied.Weights);
        Assert.Equal(3L * vocab * sizeof(float), copied.Logits);
        // mapped weights are page cache, not counted; so are weights too large to copy (they stay mapped)
        Assert.Equal(0, ServerMemory.Estimate(o, info, size, vocab, mmap: true, available: 1L << 40).Weights);
        Assert.Equal(0, ServerMemory.Estimate(o, info, size, vocab, mmap: false, available: size).Weights);
        // F32 doubles the cache
        Assert.Equal(2 * copied.KvCache, ServerMemory.Estimate(o with { CacheType = GgmlType.F32 }, info, size, vocab, false, 1L << 40).KvCache);
    }

    [Fact]
    public void ServeIsRefusedWithOneLineWhenTheCacheCannotFit()
    {
        var (info, size, vocab) = Default();
        var o = new ServerOptions { ModelPath = "m.gguf", Parallel = 64, ContextSize = 4096 };
        var need = ServerMemory.Estimate(o, info, size, vocab, mmap: false, available: 1L << 40);
        var e = Assert.Throws<InvalidOperationException>(() => ServerMemory.Check(o, info, size, vocab, false, need.Total - 1));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("64 slots x 4096 tokens", e.Message);
        Assert.Contains("lower --parallel or --ctx", e.Message);
        Assert.Contains("--cache-type f16", e.Message);
        ServerMemory.Check(o, info, size, vocab, false, need.Total); // exactly enough passes
        ServerMemory.Check(o, info, size, vocab, false, available: null); // nothing to check against off Linux
    }
}
