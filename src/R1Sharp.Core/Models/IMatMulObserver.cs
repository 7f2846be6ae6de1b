// The seam through which a forward pass shows what enters its weight matrices: each matrix product reports its input
// rows to the model's observer, when one is set (llama-imatrix's statistics, see ImatrixCollector). Unset, a product
// pays one null test.
namespace R1Sharp.Models;

public interface IMatMulObserver
{
    /// <summary>
    /// <paramref name="rows"/> input rows of <paramref name="cols"/> values, <paramref name="rowStride"/> apart in
    /// <paramref name="x"/>, enter weight <paramref name="weight"/> (its GGUF name). A 3-D weight holds
    /// <paramref name="slices"/> matrices and the rows enter matrix <paramref name="slice"/> (a 2-D weight: 0 of 1):
    /// an expert (<paramref name="expert"/>: rows are the tokens routed to it) or a per-head slice (every token's rows).
    /// </summary>
    void Observe(string weight, int slice, int slices, bool expert, ReadOnlySpan<float> x, int rows, int cols, int rowStride);
}
