// Requantizes a GGUF model the way llama.cpp's quantize does without an importance matrix: ggml's reference
// quantizers, 1-D tensors and the MoE router kept in F32, and for the _M mixes more bits where they matter most
// (the output head in Q6_K; attn_v and ffn_down in Q6_K on the first and last eighths of the layers and every
// third one between).
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

/// <summary>A target of `quantize`: the base weight type and llama.cpp's file type number.</summary>
public sealed record QuantizeTarget(string Name, GgmlType Type, int FileType, bool MoreBits = false)
{
    public static readonly IReadOnlyList<QuantizeTarget> All =
    [
        new("f32", GgmlType.F32, 0), new("f16", GgmlType.F16, 1), new("bf16", GgmlType.BF16, 32),
        new("q8_0", GgmlType.Q8_0, 7), new("q4_0", GgmlType.Q4_0, 2), new("q4_1", GgmlType.Q4_1, 3),
        new("q5_0", GgmlType.Q5_0, 8), new("q5_1", GgmlType.Q5_1, 9), new("q2_k", GgmlType.Q2_K, 10),
        new("q3_k", GgmlType.Q3_K, 12), new("q4_k", GgmlType.Q4_K, 14), new("q5_k", GgmlType.Q5_K, 16),
        new("q6_k", GgmlType.Q6_K, 18), new("q4_k_m", GgmlType.Q4_K, 15, MoreBits: true), new("q5_k_m", GgmlType.Q5_K, 17, MoreBits: true),
    ];

    public static QuantizeTarget Parse(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown quantization type '{name}' (types: {string.Join(", ", All.Select(t => t.Name))})");
}

public static class ModelQuantizer
{
    /// <summary>The type a tensor gets under <paramref name="target"/>.</summary>
    public static GgmlType TypeFor(QuantizeTarget target, GgufTensorInfo t, bool hasOutput, int layers)
    {
        if (t.Shape.Length < 2 || t.Name.Contains("ffn_gate_inp.", StringComparison.Ordinal)) return t.Type;
        var type = target.Type;
        bool isFloat = type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;
        bool isHead = t.Name == "output.weight" || (!hasOutput && t.Name == "token_embd.weight");
        if (isHead && !isFloat && type != GgmlType.Q8_0) type = GgmlType.Q6_K;
        else if (target.MoreBits && (t.Name.Contains("attn_v.", StringComparison.Ordinal) || t.Name.Contains("ffn_down", StringComparison.Ordinal))
                 && Block(t.Name) is int i && UseMoreBits(i, layers))
            type = GgmlType.Q6_K;
        return Fallback(type, t.Shape[0]);
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between.</summary>
    public static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;

    /// <summary>Rows that are not whole blocks of a type fall back to a type whose blocks fit, as llama.cpp does.</summary>
    public static GgmlType Fallback(GgmlType type, long rowLength)
    {
        if (rowLength % GgmlTypeInfo.BlockSize(type) == 0) return type;
        var fallback = type switch
        {
            GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => GgmlType.F16,
        };
        return rowLength % GgmlTypeInfo.BlockSize(fallback) == 0 ? fallback : GgmlType.F16;
    }

    /// <summary>N of a tensor named blk.N.*, else null.</summary>
    internal static int? Block(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) return null;
        int end = name.IndexOf('.', 4);
        return end > 4 && int.TryParse(name.AsSpan(4, end - 4), out int i) ? i : null;
    }

    /// <summary>Writes <paramref name="input"/> requantized to <paramref name="output"/>; reports each tensor done.</summary>
    public static unsafe void Quantize(string input, string output, QuantizeTarget target, IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        using var file = GgufFile.Open(input);
        string arch = file.RequireString("general.architecture");
        int layers = checked((int)(file.GetInt($"{arch}.block_count") ?? 0));
        bool hasOutput = file.FindTensor("output.weight") is not null;

        var w = new GgufWriter(alignment: file.Alignment);
        // a split model (any part given) becomes one file: its split.* keys stay behind
        foreach (var kv in file.Metadata)
            if (!kv.Key.StartsWith("split.", StringComparison.Ordinal))
                w.SetMetadata(kv.Key, kv.Key == "general.file_type" ? GgufValue.Of((uint)target.FileType) : kv.Value);
        if (!file.Metadata.ContainsKey("general.file_type")) w.SetMetadata("general.file_type", GgufValue.Of((uint)target.FileType));
        w.SetMetadata("general.quantization_version", GgufValue.Of(2u));

        int done = 0, total = file.Tensors.Count;
        foreach (var t in file.Tensors)
        {
            var to = TypeFor(target, t, hasOutput, layers);
            var info = t;
            if (to == t.Type)
            {
                w.AddTensor(t.Name, t.Type, t.Shape, stream =>
                {
                    file.WriteTensor(info, stream);
                    progress?.Report((++done, total, info.Name));
                });
                continue;
            }
            w.AddTensor(t.Name, to, t.Shape, stream =>
            {
                int cols = checked((int)info.Shape[0]);
                long rows = info.ElementCount / cols;
                long inRow = GgmlTypeInfo.RowBytes(info.Type, cols), outRow = GgmlTypeInfo.RowBytes(to, cols);
                const int chunkRows = 64;
                var chunk = new byte[outRow * chunkRows];
                byte* src = file.TensorPointer(info);
                for (long r0 = 0; r0 < rows; r0 += chunkRows)
                {
                    int n = (int)Math.Min(chunkRows, rows - r0);
                    long first = r0;
                    Parallel.For(0, n, () => new float[cols], (i, _, buf) =>
                    {
                        Quantization.DequantizeRow(info.Type, new ReadOnlySpan<byte>(src + (first + i) * inRow, checked((int)inRow)), buf);
                        Quantization.QuantizeRow(to, buf, chunk.AsSpan((int)(i * outRow), (int)outRow));
                        return buf;
                    }, _ => { });
                    stream.Write(chunk, 0, (int)(n * outRow));
                }
                progress?.Report((++done, total, info.Name));
            });
        }
        w.Write(output);
    }
}
