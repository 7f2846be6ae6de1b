// llama-imatrix's statistics gathered through a model's IMatMulObserver: per weight matrix, Σ x² (and Σ x) of every
// input column over the rows that entered it, with one count per matrix (per expert for the routed experts, which count
// the tokens routed to each; a per-head slice shares its tensor's count). As llama-imatrix: only blk.* weights; a dense
// product of fewer than 16 rows (a decode step) is not counted; routed experts always are.
using System.Numerics.Tensors;

namespace R1Sharp.Models;

public sealed class ImatrixCollector : IMatMulObserver
{
    /// <summary>Dense products of fewer rows are left out, as llama-imatrix leaves them out.</summary>
    public const int MinRows = 16;

    private sealed class Stats(int cols, int slices, bool expert)
    {
        public readonly int Cols = cols, Slices = slices;
        public readonly bool Expert = expert;
        public readonly float[] Sum2 = new float[cols * slices], Sum = new float[cols * slices];
        public readonly long[] Counts = new long[expert ? slices : 1];
    }

    private readonly Dictionary<string, Stats> _stats = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    /// <summary>Weight matrices seen so far.</summary>
    public int Count
    {
        get { lock (_lock) return _stats.Count; }
    }

    public void Observe(string weight, int slice, int slices, bool expert, ReadOnlySpan<float> x, int rows, int cols, int rowStride)
    {
        if (!weight.StartsWith("blk.", StringComparison.Ordinal) || rows <= 0) return;
        if (!expert && rows < MinRows) return;
        lock (_lock)
        {
            if (!_stats.TryGetValue(weight, out var s)) _stats[weight] = s = new Stats(cols, slices, expert);
            else if (s.Cols != cols || s.Slices != slices || s.Expert != expert)
                throw new InvalidOperationException($"{weight}: inputs of {cols} columns in {slices} matrices, earlier {s.Cols} in {s.Slices}");
            var sum2 = s.Sum2.AsSpan(slice * cols, cols);
            var sum = s.Sum.AsSpan(slice * cols, cols);
            for (int r = 0; r < rows; r++)
            {
                var row = x.Slice(r * rowStride, cols);
                TensorPrimitives.MultiplyAdd(row, row, sum2, sum2);
                TensorPrimitives.Add(sum, row, sum);
            }
            if (!TensorPrimitives.IsFiniteAll(sum2)) throw new InvalidOperationException($"{weight}: the activations are not finite");
            if (expert) s.Counts[slice] += rows;
            else if (slice == 0) s.Counts[0] += rows;
        }
    }

    /// <summary>The statistics as an importance matrix (entries in name order).</summary>
    public ImportanceMatrix ToImportanceMatrix(IReadOnlyList<string> datasets, int chunkCount, int chunkSize)
    {
        lock (_lock)
        {
            var entries = new SortedDictionary<string, ImportanceEntry>(StringComparer.Ordinal);
            foreach (var (name, s) in _stats)
                entries[name] = new ImportanceEntry((float[])s.Sum2.Clone(), s.Counts.Select(c => (float)c).ToArray(), (float[])s.Sum.Clone());
            return new ImportanceMatrix(entries, datasets, chunkCount, chunkSize);
        }
    }
}
