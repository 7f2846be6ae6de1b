// An importance matrix as llama.cpp's llama-imatrix writes it and llama-quantize reads it: per weight matrix, the sum
// of the squares of each input column over the tokens seen (Σ x², per expert for a MoE matrix) and the count of those
// tokens, and optionally the plain sums Σ x. Saved in llama.cpp's GGUF format (general.type "imatrix",
// imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size; F32 tensors <name>.in_sum2 {columns, matrices},
// <name>.counts {1, matrices} and, where known, <name>.in_sum {columns, matrices}, which llama.cpp's newer tools read
// for their statistics and its quantizer otherwise ignores); the legacy .dat
// format is read too (int32 entry count; per entry the name, ncall and the values stored as mean·ncall; then the chunk
// count and the dataset name). The quantizers' importance of a column is its mean square, Σ x² / count (1 for a
// matrix no token reached).
using System.Text;
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Models;

/// <summary>
/// One matrix's statistics: Σ x² per column of each of <see cref="Counts"/>.Length matrices (experts), and Σ x where
/// known.
/// </summary>
public sealed record ImportanceEntry(float[] SumOfSquares, float[] Counts, float[]? Sums = null)
{
    /// <summary>Input columns of one matrix.</summary>
    public int Columns => SumOfSquares.Length / Counts.Length;

    /// <summary>What llama-quantize hands the quantizers: Σ x² / count per column, 1 where a matrix saw no token.</summary>
    public float[] Importance()
    {
        var e = new float[SumOfSquares.Length];
        int cols = Columns;
        for (int m = 0; m < Counts.Length; m++)
            for (int i = 0; i < cols; i++) e[m * cols + i] = Counts[m] > 0 ? SumOfSquares[m * cols + i] / Counts[m] : 1;
        return e;
    }
}

public sealed class ImportanceMatrix
{
    public ImportanceMatrix(IReadOnlyDictionary<string, ImportanceEntry> entries, IReadOnlyList<string> datasets, int chunkCount, int chunkSize)
    {
        Entries = entries;
        Datasets = datasets;
        ChunkCount = chunkCount;
        ChunkSize = chunkSize;
    }

    /// <summary>By weight name (blk.0.attn_q.weight, ...).</summary>
    public IReadOnlyDictionary<string, ImportanceEntry> Entries { get; }

    /// <summary>The text files the statistics came from.</summary>
    public IReadOnlyList<string> Datasets { get; }

    /// <summary>Chunks of <see cref="ChunkSize"/> tokens evaluated.</summary>
    public int ChunkCount { get; }

    public int ChunkSize { get; }

    /// <summary>The importance of every column of a matrix (all experts' together), or null when the matrix has no entry.</summary>
    public float[]? ImportanceOf(string name) => Entries.TryGetValue(name, out var e) ? e.Importance() : null;

    // ---------------------------------------------------------------- files

    private const string SumsSuffix = ".in_sum2", CountsSuffix = ".counts", PlainSumsSuffix = ".in_sum";

    /// <summary>Reads an imatrix in llama.cpp's GGUF format, or its legacy .dat format (any file that does not start with GGUF's magic).</summary>
    public static ImportanceMatrix Load(string path)
    {
        using (var f = File.OpenRead(path))
        {
            Span<byte> magic = stackalloc byte[4];
            if (f.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4 || BitConverter.ToUInt32(magic) != GgufFile.Magic)
            {
                f.Position = 0;
                return LoadLegacy(f, path);
            }
        }
        return LoadGguf(path);
    }

    private static unsafe ImportanceMatrix LoadGguf(string path)
    {
        using var file = GgufFile.Open(path);
        if (file.GetInt("imatrix.chunk_count") is not long chunks || file.GetInt("imatrix.chunk_size") is not long chunkSize)
            throw new InvalidDataException($"{path}: not an imatrix (no imatrix.chunk_count / imatrix.chunk_size)");
        var datasets = file.GetStringArray("imatrix.datasets") ?? [];
        var entries = new SortedDictionary<string, ImportanceEntry>(StringComparer.Ordinal);
        foreach (var t in file.Tensors)
        {
            if (!t.Name.EndsWith(SumsSuffix, StringComparison.Ordinal)) continue;
            string name = t.Name[..^SumsSuffix.Length];
            var counts = file.FindTensor(name + CountsSuffix) ?? throw new InvalidDataException($"{path}: {t.Name} has no {name}{CountsSuffix}");
            if (t.Type != GgmlType.F32 || counts.Type != GgmlType.F32)
                throw new InvalidDataException($"{path}: {name}'s sums and counts must be F32");
            long matrices = t.Shape.Length > 1 ? t.Shape[1] : 1;
            if (counts.ElementCount != matrices)
                throw new InvalidDataException($"{path}: {name} has {matrices} matrices of sums but {counts.ElementCount} counts");
            var plain = file.FindTensor(name + PlainSumsSuffix);
            if (plain != null && (plain.Type != GgmlType.F32 || plain.ElementCount != t.ElementCount))
                throw new InvalidDataException($"{path}: {name}{PlainSumsSuffix} does not match {name}{SumsSuffix}");
            entries[name] = new ImportanceEntry(Floats(file, t), Floats(file, counts), plain is null ? null : Floats(file, plain));
        }
        foreach (var t in file.Tensors)
        {
            if (t.Name.EndsWith(CountsSuffix, StringComparison.Ordinal) && !entries.ContainsKey(t.Name[..^CountsSuffix.Length]))
                throw new InvalidDataException($"{path}: {t.Name} has no {SumsSuffix} tensor");
        }
        if (entries.Count == 0) throw new InvalidDataException($"{path}: no importance data");
        return new ImportanceMatrix(entries, datasets, checked((int)chunks), checked((int)chunkSize));
    }

    private static float[] Floats(GgufFile file, GgufTensorInfo t) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.TensorBytes(t)).ToArray();

    private static ImportanceMatrix LoadLegacy(Stream s, string path)
    {
        using var r = new BinaryReader(s, Encoding.UTF8, leaveOpen: true);
        try
        {
            int n = r.ReadInt32();
            if (n < 1 || n > 1 << 20) throw new InvalidDataException($"{path}: not an imatrix (neither GGUF nor a legacy .dat with entries)");
            var entries = new SortedDictionary<string, ImportanceEntry>(StringComparer.Ordinal);
            for (int i = 0; i < n; i++)
            {
                string name = ReadString(r, path);
                int ncall = r.ReadInt32(), nval = r.ReadInt32();
                if (nval < 1 || nval > 1 << 28) throw new InvalidDataException($"{path}: entry {name} has {nval} values");
                var sums = new float[nval];
                for (int j = 0; j < nval; j++) sums[j] = r.ReadSingle();
                // the file stores mean·ncall: keep ncall as the count so sums/count is llama-quantize's sums/ncall
                // (ncall ≤ 0: the values are the importances themselves)
                entries[name] = new ImportanceEntry(sums, [ncall > 0 ? ncall : 1]);
            }
            int chunks = 0;
            var datasets = new List<string>();
            if (s.Position < s.Length)
            {
                chunks = r.ReadInt32();
                datasets.Add(ReadString(r, path));
            }
            return new ImportanceMatrix(entries, datasets, chunks, 0);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: truncated imatrix");
        }
    }

    private static string ReadString(BinaryReader r, string path)
    {
        int len = r.ReadInt32();
        if (len < 0 || len > 1 << 16) throw new InvalidDataException($"{path}: bad string length {len}");
        return Encoding.UTF8.GetString(r.ReadBytes(len));
    }

    /// <summary>Writes llama.cpp's GGUF imatrix format, entries in name order as llama-imatrix sorts them.</summary>
    public void Save(string path)
    {
        var w = new GgufWriter();
        w.SetMetadata("general.type", GgufValue.Of("imatrix"));
        w.SetMetadata("imatrix.datasets", GgufValue.Of(Datasets.ToArray()));
        w.SetMetadata("imatrix.chunk_count", GgufValue.Of((uint)ChunkCount));
        w.SetMetadata("imatrix.chunk_size", GgufValue.Of((uint)ChunkSize));
        foreach (var (name, e) in Entries.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            int m = e.Counts.Length;
            w.AddTensor(name + SumsSuffix, GgmlType.F32, [e.Columns, m], Bytes(e.SumOfSquares));
            w.AddTensor(name + CountsSuffix, GgmlType.F32, [1, m], Bytes(e.Counts));
            if (e.Sums != null) w.AddTensor(name + PlainSumsSuffix, GgmlType.F32, [e.Columns, m], Bytes(e.Sums));
        }
        w.Write(path);
    }

    /// <summary>Writes the legacy .dat format (values as mean·ncall, ncall = chunks per the largest count, rounded up).</summary>
    public void SaveLegacy(string path)
    {
        using var s = File.Create(path);
        using var w = new BinaryWriter(s, Encoding.UTF8);
        var stored = Entries.Where(kv => kv.Value.Counts.Any(c => c > 0)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
        w.Write(stored.Count);
        int chunkSize = Math.Max(ChunkSize, 1);
        foreach (var (name, e) in stored)
        {
            var bytes = Encoding.UTF8.GetBytes(name);
            w.Write(bytes.Length);
            w.Write(bytes);
            int ncall = (int)((e.Counts.Max() + (chunkSize - 1)) / chunkSize);
            w.Write(ncall);
            w.Write(e.SumOfSquares.Length);
            int cols = e.Columns;
            for (int i = 0; i < e.SumOfSquares.Length; i++)
            {
                float count = e.Counts[i / cols], value = e.SumOfSquares[i];
                if (count == 0) { value = 1; count = 1; }
                w.Write(value / count * ncall);
            }
        }
        w.Write(ChunkCount);
        var dataset = Encoding.UTF8.GetBytes(Datasets.Count > 0 ? Datasets[^1] : "");
        w.Write(dataset.Length);
        w.Write(dataset);
    }

    private static byte[] Bytes(float[] v) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
}
