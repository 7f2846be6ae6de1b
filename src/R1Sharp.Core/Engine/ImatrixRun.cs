// llama-imatrix's procedure on our engine: the text tokenized whole (bos first when the model adds one), cut into
// chunks of ctx tokens, each chunk evaluated from an empty cache with its first token replaced by bos, every matrix
// input seen by an ImatrixCollector; the perplexity over the second half of each chunk is measured on the way, as
// llama-imatrix reports it. A chunk is one batch with logits for its second half, which the model cuts into pieces of
// at most 512 rows as llama.cpp's default micro-batch does, so the same rows reach the same products.
using R1Sharp.Models;

namespace R1Sharp.Engine;

public static class ImatrixRun
{
    public sealed record Result(ImportanceMatrix Matrix, int Chunks, int Tokens, double Perplexity);

    /// <summary>
    /// The importance matrix of <paramref name="model"/> over <paramref name="text"/> (named <paramref name="dataset"/>
    /// in the file): up to <paramref name="maxChunks"/> chunks (0: all) of <paramref name="ctx"/> tokens.
    /// <paramref name="progress"/> hears (chunks done, chunks, perplexity so far).
    /// </summary>
    public static Result Compute(LoadedModel model, string text, string dataset, int ctx = 512, int maxChunks = 0,
        Action<int, int, double>? progress = null)
    {
        Validate(model, ctx, maxChunks);
        var tok = model.Tokenizer;
        int[] tokens = tok.Encode(text, addBos: tok.AddBos, parseSpecial: false);
        if (tokens.Length < 2 * ctx)
            throw new ArgumentException($"the text is {tokens.Length} tokens; a context of {ctx} needs at least {2 * ctx}");
        return Compute(model, tokens, dataset, ctx, maxChunks, progress);
    }

    /// <summary>As the text overload, on tokens: chunk c is tokens[c·ctx ..] with bos in its first place when the model adds bos.</summary>
    public static Result Compute(LoadedModel model, int[] tokens, string dataset, int ctx = 512, int maxChunks = 0,
        Action<int, int, double>? progress = null)
    {
        Validate(model, ctx, maxChunks);
        if (tokens.Length < ctx) throw new ArgumentException($"{tokens.Length} tokens do not fill one chunk of {ctx}");
        var tok = model.Tokenizer;
        int chunks = tokens.Length / ctx;
        if (maxChunks > 0) chunks = Math.Min(chunks, maxChunks);

        var collector = new ImatrixCollector();
        var lm = model.Model;
        using var cache = lm.CreateCache(1, ctx);
        var batch = new Batch(ctx);
        int vocab = lm.Config.VocabSize, first = ctx / 2;
        // logits at positions first .. ctx-2 predict tokens first+1 .. ctx-1
        var logits = new float[(long)(ctx - 1 - first) * vocab];
        double nll = 0;
        long scored = 0;
        var chunk = new int[ctx];
        lm.Observer = collector;
        try
        {
            for (int c = 0; c < chunks; c++)
            {
                tokens.AsSpan(c * ctx, ctx).CopyTo(chunk);
                if (tok.AddBos && tok.BosId is int bos) chunk[0] = bos;
                cache.Truncate(0);
                batch.Clear();
                for (int p = 0; p < ctx; p++) batch.Add(chunk[p], p, 0, p >= first && p < ctx - 1);
                lm.Forward(batch, cache, logits);
                for (int p = first; p < ctx - 1; p++)
                {
                    nll -= LogSoftmaxAt(logits.AsSpan((p - first) * vocab, vocab), chunk[p + 1]);
                    scored++;
                }
                progress?.Invoke(c + 1, chunks, Math.Exp(nll / scored));
            }
        }
        finally
        {
            lm.Observer = null;
        }
        return new Result(collector.ToImportanceMatrix([dataset], chunks, ctx), chunks, chunks * ctx, Math.Exp(nll / scored));
    }

    private static void Validate(LoadedModel model, int ctx, int maxChunks)
    {
        if (ctx < 2 * ImatrixCollector.MinRows) throw new ArgumentException($"--ctx must be at least {2 * ImatrixCollector.MinRows}");
        if (ctx > model.Config.ContextLength)
            throw new ArgumentException($"--ctx {ctx} is past the model's context length {model.Config.ContextLength}");
        if (maxChunks < 0) throw new ArgumentException("--chunks must not be negative");
    }

    private static double LogSoftmaxAt(ReadOnlySpan<float> logits, int token)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (float v in logits) sum += Math.Exp(v - max);
        return logits[token] - max - Math.Log(sum);
    }
}
