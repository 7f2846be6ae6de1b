// Its own test assembly: it loads the noavx ggml libraries by path, whose sonames would otherwise be reused by
// llama.cpp (LLamaSharp) in the same process.
// Our scalar quant references against ggml's own C functions in the LLamaSharp native libraries:
// quantize_row_*_ref and ggml_quantize_chunk (byte for byte), dequantize_row_* and the generic
// ggml_vec_dot_* (bit for bit). The generic dots come from the noavx build, compiled without FMA contraction.
using System.Runtime.InteropServices;
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Ggml.Tests;

public sealed unsafe class GgmlQuantOracleTests
{
    public static TheoryData<GgmlType> QuantizedTypes => new(
        GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q8_1,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K);

    public static TheoryData<GgmlType> WeightTypes => new(
        GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);

    [Theory]
    [MemberData(nameof(QuantizedTypes))]
    public void QuantizeRowMatchesGgmlByteForByte(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var quantize = (delegate* unmanaged<float*, byte*, long, void>)Ggml.Base($"quantize_row_{Ggml.Name(type)}_ref");
        foreach (var (name, x) in Rows(f.BlockSize))
        {
            var ours = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
            var theirs = new byte[ours.Length];
            f.QuantizeReference(x, ours);
            fixed (float* px = x) fixed (byte* pt = theirs) quantize(px, pt, x.Length);
            if (type == GgmlType.Q8_K) ClearBsumsOfZeroBlocks(theirs);
            AssertBytesEqual(theirs, ours, $"{type} {name}");
        }
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void QuantizeChunkWithoutImatrixIsTheReference(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var chunk = (delegate* unmanaged<int, float*, byte*, long, long, long, float*, nuint>)Ggml.Base("ggml_quantize_chunk");
        const int rows = 3;
        int perRow = 2 * 256;
        var x = Gaussian(rows * perRow, seed: 99);
        var theirs = new byte[rows * GgmlTypeInfo.RowBytes(type, perRow)];
        fixed (float* px = x) fixed (byte* pt = theirs) chunk((int)type, px, pt, 0, rows, perRow, null);
        var ours = new byte[theirs.Length];
        f.QuantizeReference(x, ours);
        AssertBytesEqual(theirs, ours, $"{type} quantize_chunk");
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void QuantizeChunkWithImatrixMatchesGgml(GgmlType type)
    {
        // quantize_q2_K … quantize_q6_K and quantize_q4_0 … quantize_q5_1 with importance weights (Q8_0 ignores them)
        var f = QuantFormats.Get(type);
        var chunk = (delegate* unmanaged<int, float*, byte*, long, long, long, float*, nuint>)Ggml.Base("ggml_quantize_chunk");
        const int rows = 3;
        int perRow = 2 * 256;
        var rng = new Random(7);
        var imatrix = new float[perRow];
        for (int i = 0; i < perRow; i++) imatrix[i] = (float)(rng.NextDouble() < 0.05 ? 20 + 50 * rng.NextDouble() : 0.1 + rng.NextDouble());
        long rowBytes = GgmlTypeInfo.RowBytes(type, perRow);
        foreach (var (name, x) in Rows(perRow * rows / 4))
        {
            var theirs = new byte[rows * rowBytes];
            fixed (float* px = x) fixed (byte* pt = theirs) fixed (float* pi = imatrix) chunk((int)type, px, pt, 0, rows, perRow, pi);
            var ours = new byte[theirs.Length];
            for (int r = 0; r < rows; r++)
                f.Quantize(x.AsSpan(r * perRow, perRow), ours.AsSpan((int)(r * rowBytes), (int)rowBytes), imatrix);
            AssertBytesEqual(theirs, ours, $"{type} {name} with imatrix");
        }
    }

    [Theory]
    [MemberData(nameof(QuantizedTypes))]
    public void DequantizeRowMatchesGgmlBitForBit(GgmlType type)
    {
        if (type == GgmlType.Q8_1) return; // ggml has no dequantize_row_q8_1
        var f = QuantFormats.Get(type);
        var dequantize = (delegate* unmanaged<byte*, float*, long, void>)Ggml.Base($"dequantize_row_{Ggml.Name(type)}");
        foreach (var (name, x) in Rows(f.BlockSize))
        {
            var q = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
            f.QuantizeReference(x, q);
            // also arbitrary bytes: every bit pattern of scales and quants, not only what the quantizer emits
            var noise = new byte[q.Length];
            new Random(x.Length).NextBytes(noise);
            if (type != GgmlType.Q8_K) PatchFiniteHalves(type, noise); // keep f16 scales finite so NaN bits don't differ
            else PatchQ8KScales(noise);
            foreach (var (qname, bytes) in new[] { ("quantized", q), ("random bytes", noise) })
            {
                var ours = new float[x.Length];
                var theirs = new float[x.Length];
                f.Dequantize(bytes, ours);
                fixed (byte* pq = bytes) fixed (float* pt = theirs) dequantize(pq, pt, x.Length);
                for (int i = 0; i < ours.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(theirs[i]) == BitConverter.SingleToInt32Bits(ours[i]),
                        $"{type} {name} {qname}: value {i}: ggml {theirs[i]}, ours {ours[i]}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void VecDotMatchesGgmlGenericBitForBit(GgmlType type)
    {
        var f = QuantFormats.Get(type);
        var a = QuantFormats.Get(f.VecDotType);
        var dot = (delegate* unmanaged<int, float*, nuint, byte*, nuint, byte*, nuint, int, void>)
            Ggml.Cpu($"ggml_vec_dot_{Ggml.Name(type)}_{Ggml.Name(f.VecDotType)}_generic");
        foreach (int n in new[] { 256, 512, 4096 })
        {
            for (int seed = 0; seed < 4; seed++)
            {
                var wq = new byte[GgmlTypeInfo.RowBytes(type, n)];
                var xq = new byte[GgmlTypeInfo.RowBytes(f.VecDotType, n)];
                f.QuantizeReference(Gaussian(n, seed), wq);
                a.QuantizeReference(Gaussian(n, seed + 1000), xq);
                float ours = f.VecDotReference!(n, wq, xq);
                float theirs;
                fixed (byte* pw = wq) fixed (byte* px = xq) dot(n, &theirs, 0, pw, 0, px, 0, 1);
                Assert.True(BitConverter.SingleToInt32Bits(theirs) == BitConverter.SingleToInt32Bits(ours),
                    $"{type} n={n} seed={seed}: ggml {theirs:R}, ours {ours:R}");
            }
        }
    }

    // ---------------------------------------------------------------- data

    private static IEnumerable<(string, float[])> Rows(int blockSize)
    {
        int n = Math.Max(blockSize, 256) * 4;
        for (int seed = 0; seed < 6; seed++) yield return ($"gaussian seed {seed}", Gaussian(n, seed));
        yield return ("zeros", new float[n]);
        yield return ("constant 0.75", Enumerable.Repeat(0.75f, n).ToArray());
        yield return ("constant -3", Enumerable.Repeat(-3f, n).ToArray());
        var outlier = Gaussian(n, 42);
        outlier[37] = 250f;
        outlier[300] = -90f;
        yield return ("outliers", outlier);
        var positive = Gaussian(n, 43).Select(MathF.Abs).ToArray();
        yield return ("all positive", positive);
        var tiny = Gaussian(n, 44).Select(v => v * 1e-6f).ToArray();
        yield return ("tiny", tiny);
        var uniform = new Random(45);
        yield return ("uniform integers", Enumerable.Range(0, n).Select(_ => (float)uniform.Next(-8, 8)).ToArray());
        var sparse = Gaussian(n, 46);
        for (int i = 0; i < n; i++) if (i % 7 != 0) sparse[i] = 0;
        yield return ("sparse", sparse);
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

    /// <summary>Replaces every f16 field of each block with a finite value drawn from the same noise.</summary>
    private static void PatchFiniteHalves(GgmlType type, byte[] q)
    {
        int[] halfOffsets = type switch
        {
            GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => [0],
            GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q8_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],
            GgmlType.Q2_K => [80, 82],
            GgmlType.Q3_K => [108],
            GgmlType.Q6_K => [208],
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        int bb = GgmlTypeInfo.BlockBytes(type);
        for (int b = 0; b < q.Length; b += bb)
            foreach (int o in halfOffsets) q[b + o + 1] &= 0x3B; // exponent < 31: finite, |x| < 2
    }

    private static void PatchQ8KScales(byte[] q)
    {
        for (int b = 0; b < q.Length; b += 292)
            BitConverter.TryWriteBytes(q.AsSpan(b, 4), 0.01f * (1 + q[b + 5] % 7));
    }

    /// <summary>ggml leaves the block sums of an all-zero Q8_K block unwritten; we write zeros.</summary>
    private static void ClearBsumsOfZeroBlocks(byte[] q)
    {
        for (int b = 0; b < q.Length; b += 292)
            if (BitConverter.ToSingle(q, b) == 0) Array.Clear(q, b + 260, 32);
    }

    private static void AssertBytesEqual(byte[] expected, byte[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == actual[i], $"{what}: byte {i} differs: ggml {expected[i]:X2}, ours {actual[i]:X2}");
    }
}
