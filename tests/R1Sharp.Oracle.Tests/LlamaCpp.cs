// llama.cpp (through LLamaSharp) as the oracle: logits and greedy generations for a GGUF file,
// with an F32 KV cache (F16, its default, where asked) and flash attention off so its numbers are exact enough to
// compare at 1e-4.
using LLama;
using LLama.Common;
using LLama.Native;

namespace R1Sharp.Oracle.Tests;

public static class LlamaCpp
{
    public static ModelParams Params(string path, int context, int threads = 2, bool f16Cache = false) => new(path)
    {
        ContextSize = (uint)context,
        BatchSize = 512,
        UBatchSize = 512,
        Threads = threads,
        GpuLayerCount = 0,
        TypeK = f16Cache ? GGMLType.GGML_TYPE_F16 : GGMLType.GGML_TYPE_F32,
        TypeV = f16Cache ? GGMLType.GGML_TYPE_F16 : GGMLType.GGML_TYPE_F32,
        FlashAttention = false,
    };

    /// <summary>Logits of every position of one batched prefill of <paramref name="tokens"/>.</summary>
    public static float[][] PrefillLogits(string path, int[] tokens) => Prefill(Params(path, Math.Max(64, tokens.Length + 8)), tokens);

    /// <summary>
    /// Logits of every position of one prefill with a KV cache of <paramref name="cache"/> (keys and values) and flash
    /// attention on (llama.cpp refuses a quantized V cache without it).
    /// </summary>
    public static float[][] PrefillLogits(string path, int[] tokens, GGMLType cache)
    {
        var p = Params(path, Math.Max(64, tokens.Length + 8));
        p.TypeK = cache;
        p.TypeV = cache;
        p.FlashAttention = true;
        return Prefill(p, tokens);
    }

    private static float[][] Prefill(ModelParams p, int[] tokens)
    {
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < tokens.Length; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, true);
        Check(ctx.NativeHandle.Decode(batch));
        return Enumerable.Range(0, tokens.Length).Select(i => ctx.NativeHandle.GetLogitsIth(i).ToArray()).ToArray();
    }

    /// <summary>Prefills the first <paramref name="prefill"/> tokens, then feeds the rest one at a time; logits after each fed token.</summary>
    public static float[][] DecodeLogits(string path, int[] tokens, int prefill, bool f16Cache = false)
    {
        var p = Params(path, Math.Max(64, tokens.Length + 8), f16Cache: f16Cache);
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < prefill; i++) batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, i == prefill - 1);
        Check(ctx.NativeHandle.Decode(batch));
        var rows = new List<float[]> { ctx.NativeHandle.GetLogitsIth(batch.TokenCount - 1).ToArray() };
        for (int i = prefill; i < tokens.Length; i++)
        {
            batch.Clear();
            batch.Add((LLamaToken)tokens[i], i, LLamaSeqId.Zero, true);
            Check(ctx.NativeHandle.Decode(batch));
            rows.Add(ctx.NativeHandle.GetLogitsIth(0).ToArray());
        }
        return rows.ToArray();
    }

    /// <summary>Greedy generation: argmax of each step's logits, fed back, <paramref name="count"/> times.</summary>
    public static int[] Greedy(string path, int[] prompt, int count)
    {
        var p = Params(path, prompt.Length + count + 8);
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        var batch = new LLamaBatch();
        for (int i = 0; i < prompt.Length; i++) batch.Add((LLamaToken)prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
        Check(ctx.NativeHandle.Decode(batch));
        var output = new List<int>();
        int pos = prompt.Length, last = batch.TokenCount - 1;
        for (int n = 0; n < count; n++)
        {
            int next = ArgMax(ctx.NativeHandle.GetLogitsIth(last));
            output.Add(next);
            batch.Clear();
            batch.Add((LLamaToken)next, pos++, LLamaSeqId.Zero, true);
            Check(ctx.NativeHandle.Decode(batch));
            last = 0;
        }
        return output.ToArray();
    }

    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static void Check(DecodeResult r)
    {
        if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {r}");
    }
}
