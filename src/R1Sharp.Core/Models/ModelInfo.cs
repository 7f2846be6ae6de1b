// What a model is and what it takes to run: parameters (total, and active per token for MoE), bytes by tensor type,
// KV-cache bytes per token, memory at a context size. Works from metadata and a tensor list, so a preset can be
// described without writing it (deepseek-r1 is 671B parameters).
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

public sealed record TensorEntry(string Name, long[] Shape, GgmlType Type)
{
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    public long Bytes => GgmlTypeInfo.RowBytes(Type, Shape[0]) * (Elements / Shape[0]);
}

public sealed record ModelInfo
{
    public required string Architecture { get; init; }
    public required string Name { get; init; }
    public required int Layers { get; init; }
    public required long TotalParameters { get; init; }
    /// <summary>Parameters used per token: all but the routed experts, plus the chosen share of those.</summary>
    public required long ActiveParameters { get; init; }
    /// <summary>Parameters of the multi-token-prediction layers (not counted above).</summary>
    public required long MtpParameters { get; init; }
    public required long WeightBytes { get; init; }
    public required IReadOnlyDictionary<GgmlType, long> BytesByType { get; init; }
    /// <summary>Values cached per token over all layers (K and V, or the MLA latent and RoPE key).</summary>
    public required long KvValuesPerToken { get; init; }
    public required int ContextLength { get; init; }

    public long KvBytesPerToken(int bytesPerValue) => KvValuesPerToken * bytesPerValue;

    /// <summary>KV cache bytes per token in a cache type (F32, F16, Q8_0: 34 bytes per 32 values).</summary>
    public long KvBytesPerToken(GgmlType type) => GgmlTypeInfo.RowBytes(type, KvValuesPerToken + (type == GgmlType.Q8_0 ? (32 - KvValuesPerToken % 32) % 32 : 0));

    public static ModelInfo From(GgufFile file) =>
        From(file.Metadata, file.Tensors.Select(t => new TensorEntry(t.Name, t.Shape, t.Type)));

    public static ModelInfo From(IReadOnlyDictionary<string, GgufValue> md, IEnumerable<TensorEntry> tensors)
    {
        string arch = md.TryGetValue("general.architecture", out var a) ? a.ToString() : throw new InvalidDataException("general.architecture is missing");
        long Int(string key, long fallback = 0) => md.TryGetValue($"{arch}.{key}", out var v) ? v.AsInt64() ?? fallback : fallback;
        int mtp = (int)Int("nextn_predict_layers");
        int layers = (int)Int("block_count") - mtp;
        long experts = Int("expert_count"), used = Int("expert_used_count");

        long total = 0, routed = 0, mtpParams = 0, bytes = 0;
        var byType = new Dictionary<GgmlType, long>();
        foreach (var t in tensors)
        {
            bytes += t.Bytes;
            byType[t.Type] = byType.GetValueOrDefault(t.Type) + t.Bytes;
            if (ModelQuantizer.Block(t.Name) is int block && block >= layers) { mtpParams += t.Elements; continue; }
            total += t.Elements;
            if (t.Name.Contains("_exps.", StringComparison.Ordinal)) routed += t.Elements;
        }
        long active = experts > 0 ? total - routed + routed / experts * used : total;

        long kvPerLayer;
        if (Int("attention.kv_lora_rank") is long kvLora && kvLora > 0)
            kvPerLayer = kvLora + Int("rope.dimension_count");
        else
        {
            long heads = Int("attention.head_count"), kvHeads = Int("attention.head_count_kv", heads);
            long headDim = Int("attention.key_length", heads > 0 ? Int("embedding_length") / heads : 0);
            kvPerLayer = kvHeads * (headDim + Int("attention.value_length", headDim));
        }
        return new ModelInfo
        {
            Architecture = arch,
            Name = md.TryGetValue("general.name", out var n) ? n.ToString() : "",
            Layers = layers,
            TotalParameters = total,
            ActiveParameters = active,
            MtpParameters = mtpParams,
            WeightBytes = bytes,
            BytesByType = byType,
            KvValuesPerToken = kvPerLayer * layers,
            ContextLength = (int)Int("context_length", 4096),
        };
    }
}
