// Split models as llama.cpp's gguf-split writes and reads them: a model cut into parts PREFIX-00001-of-0000N.gguf, the
// first holding the metadata, every part holding split.no, split.count and split.tensors.count; and the parts merged
// back into one file. The parts are gguf-split's byte for byte: its file names, key order, tensor distribution
// (--split-max-size, --split-max-tensors, --no-tensor-first-split), tensor table and padding.
namespace R1Sharp.Formats;

public static class GgufSplit
{
    /// <summary>How gguf-split cuts a model: by bytes of tensor data per part, or by tensors per part (its default, 128).</summary>
    public sealed record Options
    {
        /// <summary>Most tensor bytes in a part (each tensor counted padded to 32 bytes; the metadata not counted); null cuts by tensors.</summary>
        public long? MaxBytes { get; init; }

        public int MaxTensors { get; init; } = 128;

        /// <summary>The first part holds the metadata alone (no tensors).</summary>
        public bool NoTensorFirstSplit { get; init; }
    }

    /// <summary>The padding gguf-split counts and writes after every tensor (GGUF_DEFAULT_ALIGNMENT), whatever the file's alignment.</summary>
    private const int TensorPadding = 32;

    /// <summary>
    /// Which tensors go in which part, in order (gguf-split's split_strategy): a new part starts where the next
    /// tensor would take the part's tensor bytes past <see cref="Options.MaxBytes"/>, or every
    /// <see cref="Options.MaxTensors"/> tensors. Throws where a part would hold none (a tensor larger than the limit).
    /// </summary>
    public static List<List<GgufTensorInfo>> Plan(GgufFile input, Options options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTensors, 1);
        if (options.MaxBytes is <= 0) throw new ArgumentOutOfRangeException(nameof(options), "the most bytes in a part must be positive");
        var parts = new List<List<GgufTensorInfo>> { new() };
        if (options.NoTensorFirstSplit) parts.Add(new());
        long bytes = 0;
        var tensors = input.Tensors;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            long padded = (t.ByteSize + TensorPadding - 1) / TensorPadding * TensorPadding;
            bool cut = options.MaxBytes is long max ? bytes + padded > max : i > 0 && i % options.MaxTensors == 0;
            if (cut)
            {
                if (parts[^1].Count == 0)
                    throw new ArgumentException($"a part would hold no tensors: {t.Name} alone is {padded} bytes, more than the {options.MaxBytes} bytes a part may hold");
                parts.Add(new());
                bytes = padded;
            }
            else
            {
                bytes += padded;
            }
            parts[^1].Add(t);
        }
        if (parts.Count > ushort.MaxValue) throw new ArgumentException($"{parts.Count} parts are more than split.count (a u16) can say");
        return parts;
    }

    /// <summary>
    /// The writer of part <paramref name="index"/> of <paramref name="count"/>: the first part takes all the metadata of
    /// <paramref name="input"/> (but its split keys), then every part split.no, split.tensors.count and split.count,
    /// in the order gguf-split leaves them.
    /// </summary>
    public static GgufWriter PartWriter(GgufFile input, IReadOnlyList<GgufTensorInfo> tensors, int index, int count)
    {
        var w = new GgufWriter(alignment: input.Alignment);
        if (index == 0)
            foreach (var kv in input.Metadata)
                if (!IsSplitKey(kv.Key)) w.SetMetadata(kv.Key, kv.Value);
        w.SetMetadata(GgufFile.SplitNoKey, GgufValue.Of((ushort)index));
        w.SetMetadata(GgufFile.SplitTensorsKey, GgufValue.Of(input.Tensors.Count));
        w.SetMetadata(GgufFile.SplitCountKey, GgufValue.Of((ushort)count));
        AddTensors(w, input, tensors);
        return w;
    }

    /// <summary>
    /// Writes <paramref name="input"/> as the parts <see cref="Plan"/> gives, named
    /// <see cref="GgufFile.PartPath"/>(<paramref name="prefix"/>, i, n); returns their paths.
    /// </summary>
    public static IReadOnlyList<string> Split(GgufFile input, string prefix, Options options, IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        var plan = Plan(input, options);
        var paths = Enumerable.Range(0, plan.Count).Select(i => GgufFile.PartPath(prefix, i, plan.Count)).ToArray();
        var inputs = new HashSet<string>(input.Paths.Select(System.IO.Path.GetFullPath), StringComparer.Ordinal);
        foreach (string p in paths)
            if (inputs.Contains(System.IO.Path.GetFullPath(p))) throw new ArgumentException($"{p} is a file of the input model; choose another prefix");
        int done = 0, total = input.Tensors.Count;
        for (int i = 0; i < plan.Count; i++)
        {
            var w = PartWriter(input, plan[i], i, plan.Count);
            w.Write(paths[i]);
            done += plan[i].Count;
            progress?.Report((done, total, System.IO.Path.GetFileName(paths[i])));
        }
        return paths;
    }

    /// <summary>
    /// The writer of the one file a split model merges into (gguf-split --merge): the first part's metadata with
    /// split.count set to 0 (moved last, as gguf's setter moves a key it sets), then every part's tensors in order.
    /// </summary>
    public static GgufWriter MergeWriter(GgufFile split)
    {
        if (!split.Metadata.ContainsKey(GgufFile.SplitCountKey))
            throw new ArgumentException($"{split.Path} is not a split model (no {GgufFile.SplitCountKey}): nothing to merge");
        var w = new GgufWriter(alignment: split.Alignment);
        foreach (var kv in split.Metadata)
            if (kv.Key != GgufFile.SplitCountKey) w.SetMetadata(kv.Key, kv.Value);
        w.SetMetadata(GgufFile.SplitCountKey, GgufValue.Of((ushort)0));
        AddTensors(w, split, split.Tensors);
        return w;
    }

    public static bool IsSplitKey(string key) => key is GgufFile.SplitNoKey or GgufFile.SplitCountKey or GgufFile.SplitTensorsKey;

    private static void AddTensors(GgufWriter w, GgufFile input, IReadOnlyList<GgufTensorInfo> tensors)
    {
        foreach (var t in tensors)
            w.AddTensor(t.Name, t.Type, GgufTensorInfo.GgmlDims(t.Shape), s => input.WriteTensor(t, s));
    }
}
