// Requantizes a GGUF model as llama.cpp's llama-quantize does: each weight's type is chosen by llama.cpp's rules for the
// file type (llama-quant.cpp's llama_tensor_get_type: more bits for the output head, attn_v, the first ffn_down layers,
// ... by mix, with its counters over the tensors in llama.cpp's order), rows that are not whole blocks fall back as
// llama.cpp's do, and each row is quantized by ggml's quantize_* (QuantFormat.Quantize) with the importance matrix's
// column weights where one is given. The IQ types that llama.cpp will not quantize without an importance matrix are
// refused the same way. The plain names q2_k, q3_k, q4_k and q5_k are not llama.cpp's mixes but the type alone for
// every matrix, with the output head in Q6_K.
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

/// <summary>A target of `quantize`: llama.cpp's file type (its number and default weight type) or a plain type.</summary>
public sealed record QuantizeTarget(string Name, GgmlType Type, int FileType, bool Plain = false)
{
    public static readonly IReadOnlyList<QuantizeTarget> All =
    [
        new("f32", GgmlType.F32, 0), new("f16", GgmlType.F16, 1), new("bf16", GgmlType.BF16, 32),
        new("q8_0", GgmlType.Q8_0, 7), new("q4_0", GgmlType.Q4_0, 2), new("q4_1", GgmlType.Q4_1, 3),
        new("q5_0", GgmlType.Q5_0, 8), new("q5_1", GgmlType.Q5_1, 9),
        new("q2_k", GgmlType.Q2_K, 10, Plain: true), new("q3_k", GgmlType.Q3_K, 12, Plain: true),
        new("q4_k", GgmlType.Q4_K, 14, Plain: true), new("q5_k", GgmlType.Q5_K, 16, Plain: true), new("q6_k", GgmlType.Q6_K, 18),
        new("q2_k_s", GgmlType.Q2_K, 21), new("q3_k_s", GgmlType.Q3_K, 11), new("q3_k_m", GgmlType.Q3_K, 12),
        new("q3_k_l", GgmlType.Q3_K, 13), new("q4_k_s", GgmlType.Q4_K, 14), new("q4_k_m", GgmlType.Q4_K, 15),
        new("q5_k_s", GgmlType.Q5_K, 16), new("q5_k_m", GgmlType.Q5_K, 17),
        new("iq1_s", GgmlType.IQ1_S, 24), new("iq1_m", GgmlType.IQ1_M, 31),
        new("iq2_xxs", GgmlType.IQ2_XXS, 19), new("iq2_xs", GgmlType.IQ2_XS, 20), new("iq2_s", GgmlType.IQ2_XS, 28),
        new("iq2_m", GgmlType.IQ2_S, 29), new("iq3_xxs", GgmlType.IQ3_XXS, 23), new("iq3_xs", GgmlType.IQ3_S, 22),
        new("iq3_s", GgmlType.IQ3_S, 26), new("iq3_m", GgmlType.IQ3_S, 27), new("iq4_nl", GgmlType.IQ4_NL, 25),
        new("iq4_xs", GgmlType.IQ4_XS, 30), new("tq1_0", GgmlType.TQ1_0, 36), new("tq2_0", GgmlType.TQ2_0, 37),
        new("mxfp4_moe", GgmlType.MXFP4, 38),
    ];

    public static QuantizeTarget Parse(string name) =>
        All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown quantization type '{name}' (types: {string.Join(", ", All.Select(t => t.Name))})");
}

/// <summary>Options of a quantization beyond the target.</summary>
public sealed record QuantizeOptions
{
    /// <summary>Column importances (llama-imatrix's statistics) for the quantizers; required by the lowest-bit IQ types.</summary>
    public ImportanceMatrix? Imatrix { get; init; }

    /// <summary>The path the imatrix was read from, recorded in the output's quantize.imatrix.file.</summary>
    public string? ImatrixPath { get; init; }

    /// <summary>llama-quantize's --pure: the target's type for every quantizable tensor, no mix.</summary>
    public bool Pure { get; init; }
}

public static class ModelQuantizer
{
    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between.</summary>
    public static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;

    /// <summary>llama.cpp's fallback for rows that are not whole blocks of a type (null: it defines none).</summary>
    public static GgmlType? FallbackOf(GgmlType type) => type switch
    {
        GgmlType.IQ1_S or GgmlType.IQ1_M or GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ3_XXS
            or GgmlType.IQ3_S or GgmlType.IQ4_XS => GgmlType.IQ4_NL,
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.TQ1_0 or GgmlType.TQ2_0 => GgmlType.Q4_0,
        GgmlType.Q4_K => GgmlType.Q5_0,
        GgmlType.Q5_K => GgmlType.Q5_1,
        GgmlType.Q6_K => GgmlType.Q8_0,
        _ => null,
    };

    /// <summary>A type whose blocks fit rows of <paramref name="rowLength"/>: the type, its fallback, else F16.</summary>
    public static GgmlType Fallback(GgmlType type, long rowLength)
    {
        if (rowLength % GgmlTypeInfo.BlockSize(type) == 0) return type;
        return FallbackOf(type) is { } f && rowLength % GgmlTypeInfo.BlockSize(f) == 0 ? f : GgmlType.F16;
    }

    /// <summary>N of a tensor named blk.N.*, else null.</summary>
    internal static int? Block(string name)
    {
        if (!name.StartsWith("blk.", StringComparison.Ordinal)) return null;
        int end = name.IndexOf('.', 4);
        return end > 4 && int.TryParse(name.AsSpan(4, end - 4), out int i) ? i : null;
    }

    /// <summary>
    /// One tensor's type under <paramref name="target"/> by the rules that need no other tensor (the output head in
    /// Q6_K; for q4_k_m and q5_k_m attn_v and ffn_down in Q6_K on use_more_bits layers): what synth's mixes and the
    /// converter use. <see cref="PlanTypes"/> is llama.cpp's whole rule set, counters included.
    /// </summary>
    public static GgmlType TypeFor(QuantizeTarget target, GgufTensorInfo t, bool hasOutput, int layers)
    {
        if (t.Shape.Length < 2 || t.Name.Contains("ffn_gate_inp.", StringComparison.Ordinal)) return t.Type;
        var type = target.Type;
        bool isFloat = type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;
        bool isHead = t.Name == "output.weight" || (!hasOutput && t.Name == "token_embd.weight");
        bool moreBits = target.FileType is 15 or 17;
        if (isHead && !isFloat && type != GgmlType.Q8_0) type = GgmlType.Q6_K;
        else if (moreBits && (t.Name.Contains("attn_v.", StringComparison.Ordinal) || t.Name.Contains("ffn_down", StringComparison.Ordinal))
                 && Block(t.Name) is int i && UseMoreBits(i, layers))
            type = GgmlType.Q6_K;
        return Fallback(type, t.Shape[0]);
    }

    /// <summary>The type of every tensor of <paramref name="file"/> (in the file's order) under <paramref name="target"/>.</summary>
    public static GgmlType[] PlanTypes(GgufFile file, QuantizeTarget target, bool hasImatrix = false, bool pure = false) =>
        new TypePlanner(file, target, hasImatrix, pure).Plan();

    /// <summary>The tensors a target needs an importance matrix for (llama.cpp's tensor_requires_imatrix), with their types.</summary>
    public static IEnumerable<(string Name, GgmlType Type)> NeedingImatrix(GgufFile file, GgmlType[] types, QuantizeTarget target)
    {
        for (int i = 0; i < types.Length; i++)
        {
            var t = file.Tensors[i];
            if (TypePlanner.AllowsQuantization(t) && RequiresImatrix(t.Name, types[i], target.FileType)) yield return (t.Name, types[i]);
        }
    }

    /// <summary>llama.cpp's tensor_requires_imatrix.</summary>
    private static bool RequiresImatrix(string name, GgmlType type, int fileType)
    {
        if (name is "token_embd.weight" or "per_layer_token_embd.weight" or "output.weight") return false;
        return type switch
        {
            GgmlType.IQ3_XXS or GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ1_M or GgmlType.IQ1_S => true,
            GgmlType.Q2_K => fileType == 21, // Q2_K in a Q2_K_S file
            _ => false,
        };
    }

    /// <summary>Writes <paramref name="input"/> requantized to <paramref name="output"/>; reports each tensor done.</summary>
    public static void Quantize(string input, string output, QuantizeTarget target, IProgress<(int Done, int Total, string Name)>? progress = null) =>
        Quantize(input, output, target, new QuantizeOptions(), progress);

    /// <summary>Writes <paramref name="input"/> requantized to <paramref name="output"/>; reports each tensor done.</summary>
    public static unsafe void Quantize(string input, string output, QuantizeTarget target, QuantizeOptions options,
        IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        using var file = GgufFile.Open(input);
        var imatrix = options.Imatrix;
        var types = PlanTypes(file, target, imatrix is not null, options.Pure);
        if (imatrix is null && NeedingImatrix(file, types, target).FirstOrDefault() is { Name: not null } need)
            throw new ArgumentException($"{target.Name} needs an importance matrix ({need.Name} would be {GgmlTypeInfo.Name(need.Type)}); give --imatrix FILE");
        if (imatrix is not null)
            foreach (var (name, e) in imatrix.Entries)
                if (e.SumOfSquares.Any(v => !float.IsFinite(v)) || e.Counts.Any(v => !float.IsFinite(v)))
                    throw new ArgumentException($"the imatrix holds a non-finite value for {name}");

        var w = new GgufWriter(alignment: file.Alignment);
        // a split model (any part given) becomes one file: its split.* keys stay behind
        foreach (var kv in file.Metadata)
            if (!kv.Key.StartsWith("split.", StringComparison.Ordinal))
                w.SetMetadata(kv.Key, kv.Key == "general.file_type" ? GgufValue.Of((uint)target.FileType) : kv.Value);
        if (!file.Metadata.ContainsKey("general.file_type")) w.SetMetadata("general.file_type", GgufValue.Of((uint)target.FileType));
        w.SetMetadata("general.quantization_version", GgufValue.Of(2u));
        w.SetMetadata("general.file_type", GgufValue.Of((uint)target.FileType));
        if (imatrix is not null)
        {
            if (options.ImatrixPath is { } p) w.SetMetadata("quantize.imatrix.file", GgufValue.Of(p));
            if (imatrix.Datasets.Count > 0) w.SetMetadata("quantize.imatrix.dataset", GgufValue.Of(imatrix.Datasets[0]));
            w.SetMetadata("quantize.imatrix.entries_count", GgufValue.Of((uint)imatrix.Entries.Count));
            if (imatrix.ChunkCount > 0) w.SetMetadata("quantize.imatrix.chunks_count", GgufValue.Of((uint)imatrix.ChunkCount));
        }

        int done = 0, total = file.Tensors.Count;
        for (int ti = 0; ti < total; ti++)
        {
            var info = file.Tensors[ti];
            var to = types[ti];
            if (to == info.Type)
            {
                w.AddTensor(info.Name, info.Type, info.Shape, stream =>
                {
                    file.WriteTensor(info, stream);
                    progress?.Report((++done, total, info.Name));
                });
                continue;
            }
            float[]? importance = imatrix is null ? null : ImportanceFor(imatrix, info);
            if (importance is null && (RequiresImatrix(info.Name, to, target.FileType) || QuantFormats.IsSupported(to) && QuantFormats.Get(to).RequiresImportance))
                throw new ArgumentException($"{info.Name} would be {GgmlTypeInfo.Name(to)}, which needs an importance matrix, and the imatrix has no entry for it");
            w.AddTensor(info.Name, to, info.Shape, stream =>
            {
                WriteQuantized(file, info, to, importance, stream);
                progress?.Report((++done, total, info.Name));
            });
        }
        w.Write(output);
    }

    /// <summary>The imatrix's column importances for a matrix (ne0 · experts of them), or null; a size mismatch is an error but for token_embd.</summary>
    private static float[]? ImportanceFor(ImportanceMatrix imatrix, GgufTensorInfo t)
    {
        var e = imatrix.ImportanceOf(t.Name);
        if (e is null) return null;
        long expected = t.Shape[0] * (t.Shape.Length > 2 ? t.Shape[2] : 1);
        if (e.Length == expected) return e;
        if (t.Name is "token_embd.weight" or "per_layer_token_embd.weight") return null;
        throw new ArgumentException($"the imatrix has {e.Length} values for {t.Name}, which has {expected} columns");
    }

    private static unsafe void WriteQuantized(GgufFile file, GgufTensorInfo info, GgmlType to, float[]? importance, Stream stream)
    {
        int cols = checked((int)info.Shape[0]);
        long rows = info.ElementCount / cols;
        long rowsPerMatrix = info.Shape.Length > 1 ? info.Shape[1] : 1;
        long inRow = GgmlTypeInfo.RowBytes(info.Type, cols), outRow = GgmlTypeInfo.RowBytes(to, cols);
        var format = QuantFormats.IsSupported(to) ? QuantFormats.Get(to) : null;
        const int chunkRows = 64;
        var chunk = new byte[outRow * chunkRows];
        byte* src = file.TensorPointer(info);
        for (long r0 = 0; r0 < rows; r0 += chunkRows)
        {
            int n = (int)Math.Min(chunkRows, rows - r0);
            long first = r0;
            Parallel.For(0, n, () => new float[cols], (i, _, buf) =>
            {
                long r = first + i;
                Quantization.DequantizeRow(info.Type, new ReadOnlySpan<byte>(src + r * inRow, checked((int)inRow)), buf);
                var dst = chunk.AsSpan((int)(i * outRow), (int)outRow);
                if (format is null) Quantization.QuantizeRow(to, buf, dst);
                else
                {
                    // each expert of a 3-D weight has its own columns' importances
                    var imp = importance is null ? default : importance.AsSpan((int)(r / rowsPerMatrix * cols), cols);
                    format.Quantize(buf, dst, imp);
                }
                return buf;
            }, _ => { });
            stream.Write(chunk, 0, (int)(n * outRow));
        }
    }
}
