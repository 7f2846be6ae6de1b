// Rows of F32 values read straight from mapped safetensors data, and the rearrangements the converter makes on the
// way to GGUF: Llama's Q/K row permutation, MLA's kv_b split into attn_k_b (transposed per head) and attn_v_b, and
// the experts of a layer stacked into one 3-D tensor. FP8 weights (float8_e4m3fn) are dequantized here, element by
// element with their 128×128 block's scale (weight_scale_inv), so no full-precision copy of them ever exists.
using R1Sharp.Formats;
using R1Sharp.Kernels;

namespace R1Sharp.Conversion;

/// <summary>A tensor as rows of <see cref="Cols"/> floats (GGUF's ne[0] is <see cref="Cols"/>).</summary>
internal interface IRowSource
{
    long Rows { get; }
    int Cols { get; }
    /// <summary>Writes row <paramref name="row"/> into <paramref name="dst"/> (Cols values); safe to call from several threads.</summary>
    void Read(long row, Span<float> dst);
    /// <summary>The checkpoint tensors read, to release from memory once written.</summary>
    IEnumerable<HfTensor> Inputs { get; }

    /// <summary>Rows before <paramref name="rows"/> are written: the pages only they used may be dropped.</summary>
    void Written(long rows) { }
}

/// <summary>One checkpoint tensor seen as rows: the last dimension is the row, the others multiply into the row count.</summary>
internal sealed unsafe class HfTensor : IRowSource
{
    private readonly SafetensorsFile _file;
    private readonly byte* _data;
    private readonly SafetensorsDType _dtype;
    // FP8 only: the scale of each block of _blockRows × _blockCols elements
    private readonly HfTensor? _scale;
    private readonly int _blockRows, _blockCols, _scaleCols;

    public HfTensor(string name, SafetensorsFile file, SafetensorsTensorInfo info, HfTensor? scale = null, int[]? blockSize = null)
    {
        Name = name;
        _file = file;
        Info = info;
        _dtype = info.DType;
        string where = $"{file.Path}: tensor {name}";
        if (_dtype is not (SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.F8_E4M3))
            throw new CheckpointException($"{where} is {_dtype}; convert reads F32, F16, BF16 and F8_E4M3 weights");
        Shape = info.Shape;
        Cols = Shape.Length == 0 ? 1 : checked((int)Shape[^1]);
        Rows = Cols == 0 ? 0 : info.ElementCount / Cols;
        if (info.ElementCount == 0) throw new CheckpointException($"{where} is empty (shape [{string.Join(", ", Shape)}])");
        _data = file.TensorPointer(info);
        if (_dtype == SafetensorsDType.F8_E4M3)
        {
            if (scale is null) throw new CheckpointException($"{where} is F8_E4M3 but the checkpoint has no {name}_scale_inv for it");
            if (Shape.Length != 2) throw new CheckpointException($"{where} is F8_E4M3 with {Shape.Length} dimensions; block scales need 2");
            if (scale.Shape.Length != 2 || blockSize is not { Length: 2 } || blockSize[0] <= 0 || blockSize[1] <= 0)
                throw new CheckpointException($"{where}: its scale {scale.Name} is not a 2-D grid of blocks (weight_block_size {Fmt(blockSize)})");
            long wantR = (Rows + blockSize[0] - 1) / blockSize[0], wantC = (Cols + blockSize[1] - 1) / blockSize[1];
            if (scale.Shape[0] != wantR || scale.Shape[1] != wantC)
                throw new CheckpointException($"{where} [{Rows}, {Cols}] needs a [{wantR}, {wantC}] scale for {blockSize[0]}×{blockSize[1]} blocks; {scale.Name} is [{string.Join(", ", scale.Shape)}]");
            if (scale._dtype == SafetensorsDType.F8_E4M3) throw new CheckpointException($"{file.Path}: scale {scale.Name} is itself F8_E4M3");
            _scale = scale;
            _blockRows = blockSize[0];
            _blockCols = blockSize[1];
            _scaleCols = (int)wantC;
        }
        else if (scale is not null) throw new CheckpointException($"{where} is {_dtype} yet has a block scale {scale.Name}");
    }

    private static string Fmt(int[]? a) => a is null ? "missing" : $"[{string.Join(", ", a)}]";

    public string Name { get; }
    public SafetensorsTensorInfo Info { get; }
    public long[] Shape { get; }
    public long Rows { get; }
    public int Cols { get; }
    public bool IsFp8 => _scale is not null;
    public IEnumerable<HfTensor> Inputs => _scale is null ? [this] : [this, _scale];

    public void Read(long row, Span<float> dst)
    {
        dst = dst[..Cols];
        byte* p = _data + row * Cols * SafetensorsHeader.ElementBytes(_dtype);
        switch (_dtype)
        {
            case SafetensorsDType.F32:
                new ReadOnlySpan<float>(p, Cols).CopyTo(dst);
                break;
            case SafetensorsDType.BF16:
                for (int i = 0; i < dst.Length; i++) dst[i] = HalfConvert.BF16ToF32(((ushort*)p)[i]);
                break;
            case SafetensorsDType.F16:
                for (int i = 0; i < dst.Length; i++) dst[i] = HalfConvert.F16ToF32(((ushort*)p)[i]);
                break;
            default:
            {
                // FP8: the product in F32, as float(w) * float(scale) is computed by the reference converter
                long sr = row / _blockRows;
                for (int b = 0; b < _scaleCols; b++)
                {
                    float s = _scale!.Element(sr, b);
                    int c0 = b * _blockCols, c1 = Math.Min(Cols, c0 + _blockCols);
                    for (int c = c0; c < c1; c++) dst[c] = Fp8E4M3.Table[p[c]] * s;
                }
                break;
            }
        }
    }

    /// <summary>One element (for the strided reads of a transposition).</summary>
    public float Element(long row, int col)
    {
        long i = row * Cols + col;
        return _dtype switch
        {
            SafetensorsDType.F32 => ((float*)_data)[i],
            SafetensorsDType.BF16 => HalfConvert.BF16ToF32(((ushort*)_data)[i]),
            SafetensorsDType.F16 => HalfConvert.F16ToF32(((ushort*)_data)[i]),
            _ => Fp8E4M3.Table[_data[i]] * _scale!.Element(row / _blockRows, col / _blockCols),
        };
    }

    public void Release()
    {
        _file.Release(Info);
        _scale?.Release();
    }

    public void Written(long rows)
    {
        long bytes = Math.Min(rows, Rows) * Cols * SafetensorsHeader.ElementBytes(_dtype);
        _file.Release(Info.Begin, Info.Begin + bytes);
    }
}

/// <summary>float8_e4m3fn (1 sign, 4 exponent bits with bias 7, 3 mantissa bits; no infinities, S.1111.111 is NaN).</summary>
internal static class Fp8E4M3
{
    public static readonly float[] Table = Build();

    private static float[] Build()
    {
        var t = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int e = (b >> 3) & 15, m = b & 7;
            float v = e == 15 && m == 7 ? float.NaN
                : e == 0 ? m / 8f * MathF.Pow(2, -6)
                : (1 + m / 8f) * MathF.Pow(2, e - 7);
            t[b] = (b & 0x80) != 0 ? -v : v;
        }
        return t;
    }
}

/// <summary>Llama's Q/K rows reordered from Hugging Face's rotate-half layout to GGUF's interleaved pairs: within
/// each head, row 2i+j takes source row j·(headDim/2)+i.</summary>
internal sealed class PermutedRows(IRowSource inner, int heads) : IRowSource
{
    public long Rows => inner.Rows;
    public int Cols => inner.Cols;
    public IEnumerable<HfTensor> Inputs => inner.Inputs;

    public void Read(long row, Span<float> dst) => inner.Read(Source(row, Rows, heads), dst);

    public static long Source(long row, long n, int heads)
    {
        long headDim = n / heads, h = row / headDim, k = row % headDim;
        return h * headDim + (k % 2) * (headDim / 2) + k / 2;
    }
}

/// <summary>A 1-D tensor (a bias) with its elements permuted as <see cref="PermutedRows"/> permutes rows.</summary>
internal sealed class PermutedVector(IRowSource inner, int heads) : IRowSource
{
    public long Rows => 1;
    public int Cols => inner.Cols;
    public IEnumerable<HfTensor> Inputs => inner.Inputs;

    public void Read(long row, Span<float> dst)
    {
        var v = new float[Cols];
        inner.Read(0, v);
        for (int i = 0; i < Cols; i++) dst[i] = v[PermutedRows.Source(i, Cols, heads)];
    }
}

/// <summary>Several tensors of the same row width one after the other (the experts of a layer: ne[2] = expert).</summary>
internal sealed class StackedRows(IReadOnlyList<IRowSource> parts) : IRowSource
{
    public long Rows { get; } = parts.Sum(p => p.Rows);
    public int Cols => parts[0].Cols;
    public IEnumerable<HfTensor> Inputs => parts.SelectMany(p => p.Inputs);

    public void Read(long row, Span<float> dst)
    {
        long per = parts[0].Rows;
        parts[(int)(row / per)].Read(row % per, dst);
    }

    public void Written(long rows)
    {
        long per = parts[0].Rows;
        for (int i = 0; i < parts.Count && (i + 1) * per <= rows; i++) parts[i].Written(per);
    }
}

/// <summary>
/// MLA's kv_b_proj [heads·(nope+v), kvLora] viewed per head as [nope+v, kvLora]. K: the first nope rows of each head,
/// transposed, giving attn_k_b ne = {nope, kvLora, heads}. V: the last v rows, giving attn_v_b ne = {kvLora, v, heads}.
/// </summary>
internal sealed class KvBSplit(HfTensor kvB, int heads, int nope, int v, bool keys) : IRowSource
{
    public long Rows => keys ? (long)heads * kvB.Cols : (long)heads * v;
    public int Cols => keys ? nope : kvB.Cols;
    public IEnumerable<HfTensor> Inputs => [kvB];

    public void Read(long row, Span<float> dst)
    {
        if (keys)
        {
            long h = row / kvB.Cols;
            int c = (int)(row % kvB.Cols);
            for (int d = 0; d < nope; d++) dst[d] = kvB.Element(h * (nope + v) + d, c);
        }
        else
        {
            long h = row / v, d = row % v;
            kvB.Read(h * (nope + v) + nope + d, dst);
        }
    }
}

/// <summary>Values computed by the converter (rope_freqs), one row.</summary>
internal sealed class ConstantRow(float[] values) : IRowSource
{
    public long Rows => 1;
    public int Cols => values.Length;
    public IEnumerable<HfTensor> Inputs => [];
    public void Read(long row, Span<float> dst) => values.CopyTo(dst);
}
