// What the engine needs from any architecture: a batched forward pass that fills a KV cache
// and returns logits for the tokens that will be sampled.
using R1Sharp.Engine;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

public interface ICausalLM : IDisposable
{
    ModelConfig Config { get; }

    /// <summary>
    /// A KV cache with <paramref name="slots"/> sequences of up to <paramref name="capacity"/> positions, K values of
    /// <paramref name="kType"/> (F32, F16 or Q8_0) and V values of <paramref name="vType"/> (default: the K type).
    /// </summary>
    KvCache CreateCache(int slots, int capacity, GgmlType kType = GgmlType.F32, GgmlType? vType = null);

    /// <summary>
    /// Runs every token of <paramref name="batch"/> through the model, appending its K and V to its slot of
    /// <paramref name="cache"/>. Writes VocabSize logits per token that requested them, in batch order, into
    /// <paramref name="logits"/> (length at least LogitCount × VocabSize).
    /// </summary>
    void Forward(Batch batch, KvCache cache, Span<float> logits);

    /// <summary>
    /// As <see cref="Forward(Batch, KvCache, Span{float})"/>, and writes the final hidden state (after the output norm)
    /// of every token of the batch into <paramref name="hidden"/>: Count × Dim, in batch order (an MTP head reads it).
    /// </summary>
    void Forward(Batch batch, KvCache cache, Span<float> logits, Span<float> hidden);

    /// <summary>Sees the inputs of the weight matrices during <see cref="Forward"/> (null: none, the default).</summary>
    IMatMulObserver? Observer { get; set; }

    /// <summary>The model's multi-token-prediction head (deepseek2 files with nextn layers), or null.</summary>
    IMtpHead? Mtp { get; }
}

/// <summary>
/// A multi-token-prediction module (DeepSeek-V3's MTP, the nextn layers of a GGUF): from the main model's final hidden
/// state at position i and the embedding of token i+1 it predicts token i+2, through one more transformer block with
/// a KV cache of its own.
/// </summary>
public interface IMtpHead
{
    /// <summary>Width of the hidden states it reads and writes.</summary>
    int Dim { get; }

    /// <summary>A cache for the MTP block: <paramref name="slots"/> sequences of up to <paramref name="capacity"/> positions.</summary>
    KvCache CreateCache(int slots, int capacity, GgmlType type = GgmlType.F32);

    /// <summary>
    /// Runs the block on every token of <paramref name="batch"/> (token i+1, at position i of its slot), each with its
    /// row of <paramref name="hidden"/> (Count × Dim: the hidden state of position i, from the main model or from this
    /// head's previous step). Writes logits for the tokens that asked for them, and every token's block output into
    /// <paramref name="hiddenOut"/> (Count × Dim), which the next step of a chained draft reads.
    /// </summary>
    void Forward(Batch batch, ReadOnlySpan<float> hidden, KvCache cache, Span<float> logits, Span<float> hiddenOut);
}
