// The IQ, TQ and MXFP4 references against ggml's own C functions: dequantize_row_* and the generic ggml_vec_dot_* bit
// for bit over rows whose grid index fields run through every index of the grid (so every grid point we derive is
// held to ggml's table), quantize_row_*_ref and ggml_quantize_chunk byte for byte, with and without importance weights.
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Ggml.Tests;

public sealed unsafe class GgmlIqOracleTests
{
    public static TheoryData<GgmlType> Types => new(
        GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M,
        GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4);

    /// <summary>The types that ggml gives a quantize_row_*_ref.</summary>
    public static TheoryData<GgmlType> ReferenceTypes => new(
        GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.MXFP4);

    [Theory]
    [MemberData(nameof(Types))]
    public void DequantizeRowMatchesGgmlOverEveryGridIndex(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var dequantize = (delegate* unmanaged<byte*, float*, long, void>)Ggml.Base($"dequantize_row_{Ggml.Name(type)}");
        foreach (var (what, q) in Rows(type))
        {
            int n = q.Length / f.BlockBytes * f.BlockSize;
            var ours = new float[n];
            var theirs = new float[n];
            f.Dequantize(q, ours);
            fixed (byte* pq = q) fixed (float* pt = theirs) dequantize(pq, pt, n);
            for (int i = 0; i < n; i++)
                Assert.True(BitConverter.SingleToInt32Bits(theirs[i]) == BitConverter.SingleToInt32Bits(ours[i]),
                    $"{type} {what}: value {i}: ggml {theirs[i]}, ours {ours[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void VecDotMatchesGgmlGenericOverEveryGridIndex(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var a = QuantFormats.Get(f.VecDotType);
        var dot = (delegate* unmanaged<int, float*, nuint, byte*, nuint, byte*, nuint, int, void>)
            Ggml.Cpu($"ggml_vec_dot_{Ggml.Name(type)}_{Ggml.Name(f.VecDotType)}_generic");
        int seed = 0;
        foreach (var (what, wq) in Rows(type))
        {
            int n = wq.Length / f.BlockBytes * f.BlockSize;
            var xq = new byte[GgmlTypeInfo.RowBytes(f.VecDotType, n)];
            a.QuantizeReference(Gaussian(n, 500 + seed++), xq);
            float ours = f.VecDotReference!(n, wq, xq);
            float theirs;
            fixed (byte* pw = wq) fixed (byte* px = xq) dot(n, &theirs, 0, pw, 0, px, 0, 1);
            Assert.True(BitConverter.SingleToInt32Bits(theirs) == BitConverter.SingleToInt32Bits(ours),
                $"{type} {what}: ggml {theirs:R}, ours {ours:R}");
        }
    }

    [Theory]
    [MemberData(nameof(ReferenceTypes))]
    public void QuantizeRowReferenceMatchesGgmlByteForByte(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var quantize = (delegate* unmanaged<float*, byte*, long, void>)Ggml.Base($"quantize_row_{Ggml.Name(type)}_ref");
        foreach (var (name, x) in Inputs(f.BlockSize))
        {
            var ours = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
            var theirs = new byte[ours.Length];
            f.QuantizeReference(x, ours);
            fixed (float* px = x) fixed (byte* pt = theirs) quantize(px, pt, x.Length);
            // ggml's IQ4_NL reference leaves an all-zero block's nibbles as its level buffer held them (the first
            // block's uninitialized): only the scale of such a block is compared
            if (type == GgmlType.IQ4_NL) ClearNibblesOfZeroScaleBlocks(theirs, ours);
            AssertBytesEqual(theirs, ours, $"{type} {name}");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void QuantizeChunkMatchesGgmlWithImportanceWeights(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var chunk = (delegate* unmanaged<int, float*, byte*, long, long, long, float*, nuint>)Ggml.Base("ggml_quantize_chunk");
        const int rows = 3, perRow = 2 * 256;
        foreach (var (name, x) in Inputs(perRow * rows))
        {
            var imatrix = ImportanceWeights(perRow, x.Length);
            var theirs = new byte[rows * GgmlTypeInfo.RowBytes(type, perRow)];
            fixed (float* px = x) fixed (byte* pt = theirs) fixed (float* pi = imatrix) chunk((int)type, px, pt, 0, rows, perRow, pi);
            var ours = new byte[theirs.Length];
            long rowBytes = GgmlTypeInfo.RowBytes(type, perRow);
            for (int r = 0; r < rows; r++)
                f.Quantize(x.AsSpan(r * perRow, perRow), ours.AsSpan((int)(r * rowBytes), (int)rowBytes), imatrix);
            AssertBytesEqual(theirs, ours, $"{type} {name} with imatrix");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void QuantizeChunkMatchesGgmlWithoutImportanceWeights(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var requires = (delegate* unmanaged<int, byte>)Ggml.Base("ggml_quantize_requires_imatrix");
        Assert.Equal(requires((int)type) != 0, f.RequiresImportance);
        if (f.RequiresImportance)
        {
            // ggml asserts; ours refuses with an exception
            Assert.ThrowsAny<ArgumentException>(() => f.Quantize(new float[256], new byte[f.BlockBytes * 256 / f.BlockSize], default));
            return;
        }
        var chunk = (delegate* unmanaged<int, float*, byte*, long, long, long, float*, nuint>)Ggml.Base("ggml_quantize_chunk");
        const int rows = 3, perRow = 2 * 256;
        foreach (var (name, x) in Inputs(perRow * rows))
        {
            var theirs = new byte[rows * GgmlTypeInfo.RowBytes(type, perRow)];
            fixed (float* px = x) fixed (byte* pt = theirs) chunk((int)type, px, pt, 0, rows, perRow, null);
            var ours = new byte[theirs.Length];
            long rowBytes = GgmlTypeInfo.RowBytes(type, perRow);
            for (int r = 0; r < rows; r++)
                f.Quantize(x.AsSpan(r * perRow, perRow), ours.AsSpan((int)(r * rowBytes), (int)rowBytes), default);
            AssertBytesEqual(theirs, ours, $"{type} {name} without imatrix");
        }
    }

    // ---------------------------------------------------------------- rows covering every grid index

    /// <summary>
    /// Quantized rows to dequantize and dot: random bytes (finite f16 scales) whose grid index fields count through
    /// every index of the type's grid, and rows our quantizer wrote from Gaussian values with importance weights.
    /// </summary>
    private static IEnumerable<(string, byte[])> Rows(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var (slots, gridSize) = GridSlots(type);
        int blocks = Math.Max(4, slots == 0 ? 8 : (gridSize + slots - 1) / slots);
        for (int pass = 0; pass < 2; pass++)
        {
            var q = new byte[blocks * f.BlockBytes];
            new Random(17 + pass).NextBytes(q);
            PatchFiniteScales(type, q);
            // pass 1 shifts the indices so each lands in another slot (another position in the block, another shift)
            for (int b = 0; b < blocks && slots > 0; b++)
                for (int s = 0; s < slots; s++) SetGridIndex(type, q.AsSpan(b * f.BlockBytes, f.BlockBytes), s, (b * slots + s + pass * 7) % gridSize);
            yield return ($"every grid index, pass {pass}", q);
        }
        int n = 4 * 256;
        for (int seed = 0; seed < 3; seed++)
        {
            var x = Gaussian(n, 40 + seed);
            var q = new byte[GgmlTypeInfo.RowBytes(type, n)];
            f.Quantize(x, q, ImportanceWeights(n, n));
            yield return ($"quantized, seed {seed}", q);
        }
    }

    /// <summary>Grid index fields per block and the grid's size (0 slots: no grid).</summary>
    private static (int Slots, int GridSize) GridSlots(GgmlType type) => type switch
    {
        GgmlType.IQ2_XXS => (32, 256),
        GgmlType.IQ2_XS => (32, 512),
        GgmlType.IQ2_S => (32, 1024),
        GgmlType.IQ3_XXS => (64, 256),
        GgmlType.IQ3_S => (64, 512),
        GgmlType.IQ1_S or GgmlType.IQ1_M => (32, 2048),
        _ => (0, 0),
    };

    /// <summary>Writes grid index g into index field s of one block, leaving the other bits of the block as they are.</summary>
    private static void SetGridIndex(GgmlType type, Span<byte> b, int s, int g)
    {
        switch (type)
        {
            case GgmlType.IQ2_XXS:
                b[2 + 8 * (s / 4) + s % 4] = (byte)g;
                break;
            case GgmlType.IQ2_XS:
                b[2 + 2 * s] = (byte)g;
                b[3 + 2 * s] = (byte)((b[3 + 2 * s] & 0xFE) | (g >> 8));
                break;
            case GgmlType.IQ2_S:
                b[2 + s] = (byte)g;
                b[66 + s / 4] = (byte)((b[66 + s / 4] & ~(3 << (2 * (s % 4)))) | ((g >> 8) << (2 * (s % 4))));
                break;
            case GgmlType.IQ3_XXS:
                b[2 + s] = (byte)g;
                break;
            case GgmlType.IQ3_S:
                b[2 + s] = (byte)g;
                b[66 + s / 8] = (byte)((b[66 + s / 8] & ~(1 << (s % 8))) | ((g >> 8) << (s % 8)));
                break;
            case GgmlType.IQ1_S:
            {
                b[2 + s] = (byte)g;
                int at = 34 + 2 * (s / 4), shift = 3 * (s % 4);
                int qh = b[at] | (b[at + 1] << 8);
                qh = (qh & ~(7 << shift)) | ((g >> 8) << shift);
                b[at] = (byte)qh;
                b[at + 1] = (byte)(qh >> 8);
                break;
            }
            case GgmlType.IQ1_M:
            {
                b[s] = (byte)g;
                int shift = 4 * (s % 2);
                b[32 + s / 2] = (byte)((b[32 + s / 2] & ~(7 << shift)) | ((g >> 8) << shift));
                break;
            }
        }
    }

    /// <summary>Keeps every f16 scale of random blocks finite (and IQ1_M's, spread over its scale words), so NaN payloads never differ.</summary>
    private static void PatchFiniteScales(GgmlType type, byte[] q)
    {
        int bb = GgmlTypeInfo.BlockBytes(type);
        for (int b = 0; b < q.Length; b += bb)
        {
            switch (type)
            {
                case GgmlType.IQ1_M:
                    // the f16's high byte is the top nibbles of scale words 2 and 3
                    q[b + 53] &= 0xBF;
                    q[b + 55] &= 0x3F;
                    break;
                case GgmlType.MXFP4:
                    break; // an E8M0 exponent is always finite
                default:
                    int o = type switch { GgmlType.TQ1_0 => 52, GgmlType.TQ2_0 => 64, _ => 0 };
                    q[b + o + 1] &= 0x3B; // exponent < 31: finite, |d| < 2
                    break;
            }
        }
    }

    // ---------------------------------------------------------------- data

    private static IEnumerable<(string, float[])> Inputs(int n)
    {
        n = Math.Max(n, 4 * 256);
        for (int seed = 0; seed < 4; seed++) yield return ($"gaussian seed {seed}", Gaussian(n, seed));
        yield return ("zeros", new float[n]);
        yield return ("constant 0.75", Enumerable.Repeat(0.75f, n).ToArray());
        var outlier = Gaussian(n, 42);
        outlier[37] = 250f;
        outlier[300] = -90f;
        yield return ("outliers", outlier);
        yield return ("all positive", Gaussian(n, 43).Select(MathF.Abs).ToArray());
        yield return ("tiny", Gaussian(n, 44).Select(v => v * 1e-6f).ToArray());
        var uniform = new Random(45);
        yield return ("uniform integers", Enumerable.Range(0, n).Select(_ => (float)uniform.Next(-8, 8)).ToArray());
        var sparse = Gaussian(n, 46);
        for (int i = 0; i < n; i++) if (i % 7 != 0) sparse[i] = 0;
        yield return ("sparse", sparse);
        var zeroBlock = Gaussian(n, 47);
        Array.Clear(zeroBlock, 256, 256);
        yield return ("a zero block", zeroBlock);
    }

    /// <summary>Positive column importances of the spread an imatrix has (a few columns far larger), repeated per row.</summary>
    private static float[] ImportanceWeights(int perRow, int n)
    {
        var rng = new Random(perRow);
        var w = new float[perRow];
        for (int i = 0; i < perRow; i++) w[i] = (float)(rng.NextDouble() < 0.05 ? 20 + 50 * rng.NextDouble() : 0.1 + rng.NextDouble());
        return n >= perRow ? w : w[..n];
    }

    private static float[] Gaussian(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    private static void ClearNibblesOfZeroScaleBlocks(byte[] theirs, byte[] ours)
    {
        for (int b = 0; b < theirs.Length; b += 18)
        {
            if (theirs[b] != 0 || theirs[b + 1] != 0) continue;
            Array.Clear(theirs, b + 2, 16);
            Array.Clear(ours, b + 2, 16);
        }
    }

    private static void AssertBytesEqual(byte[] expected, byte[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i], $"{what}: byte {i} differs: ggml {expected[i]:X2}, ours {actual[i]:X2}");
    }
}
