// What the engine needs from any architecture: a batched forward pass that fills a KV cache
// and returns logits for the tokens that will be sampled.
using R1Sharp.Engine;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

public interface ICausalLM : IDisposable
{
    ModelConfig Config { get; }

    /// <summary>A KV cache with <paramref name="slots"/> sequences of up to <paramref name="capacity"/> positions, of F32 (default) or F16 values.</summary>
    KvCache CreateCache(int slots, int capacity, GgmlType type = GgmlType.F32);

    /// <summary>
    /// Runs every token of <paramref name="batch"/> through the model, appending its K and V to its slot of
    /// <paramref name="cache"/>. Writes VocabSize logits per token that requested them, in batch order, into
    /// <paramref name="logits"/> (length at least LogitCount × VocabSize).
    /// </summary>
    void Forward(Batch batch, KvCache cache, Span<float> logits);
}
