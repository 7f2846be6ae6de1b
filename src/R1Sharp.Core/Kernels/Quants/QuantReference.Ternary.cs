// Scalar reference for ggml's ternary formats (BitNet b1.58, TriLM): 256 values of −1, 0, 1 times one f16 scale.
//   TQ1_0 (54 B): 48 bytes of 5 trits each (the byte is ⌈t·256/243⌉ for the base-3 number t; trit k is recovered as
//     ((byte·3^k mod 256)·3) >> 8), the first 32 bytes for values 0..159 (value 32n + m in byte m, trit n), the next 16
//     for values 160..239 (value 160 + 16n + m in byte 32 + m); then 4 bytes of 4 trits for values 240..255 (value
//     240 + 4n + j in byte j, trit n); f16 d.
//   TQ2_0 (66 B): 64 bytes of 2-bit codes q (value = q − 1), value 128h + 32l + m in bits 2l of byte 32h + m; f16 d.
// dequantize_row_*, quantize_row_*_ref (what quantize_tq*_0 writes, importance weights unused) and the generic dots.
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Tq1Bytes = 54, Tq2Bytes = 66;

    private static ReadOnlySpan<byte> Pow3 => [1, 3, 9, 27, 81, 243];

    // ---------------------------------------------------------------- TQ1_0

    /// <summary>
    /// Where the trits of a TQ1_0 block live: value v (0..255) is trit Trit(v) of byte Byte(v) (qs[0..47], then qh[0..3]
    /// at 48..51).
    /// </summary>
    private static (int Byte, int Trit) Tq1Position(int v) => v switch
    {
        < 160 => (v % 32, v / 32),
        < 240 => (32 + (v - 160) % 16, (v - 160) / 16),
        _ => (48 + (v - 240) % 4, (v - 240) / 4),
    };

    /// <summary>Trit k (0, 1 or 2) of a packed byte.</summary>
    private static int Trit(byte q, int k) => ((byte)(q * Pow3[k]) * 3) >> 8;

    public static void DequantizeRowTQ1_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Tq1Bytes, "tq1_0");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Tq1Bytes, Tq1Bytes);
            float d = ReadHalf(b, 52);
            for (int v = 0; v < QK_K; v++)
            {
                var (at, k) = Tq1Position(v);
                dst[i * QK_K + v] = (float)(Trit(b[at], k) - 1) * d;
            }
        }
    }

    public static void QuantizeRowTQ1_0Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Tq1Bytes, "tq1_0");
        Span<int> t = stackalloc int[52];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Tq1Bytes, Tq1Bytes);
            float id = TernaryScale(x, b, 52);
            t.Clear();
            for (int v = 0; v < QK_K; v++)
            {
                // a byte's first trit is its most significant: 5 trits in qs, 4 in qh
                var (at, k) = Tq1Position(v);
                t[at] += (TernaryLevel(x[v], id) + 1) * Pow3[(at < 48 ? 4 : 3) - k];
            }
            for (int at = 0; at < 52; at++)
            {
                int q = at < 48 ? t[at] : 3 * t[at]; // qh's 4 trits are shifted up to the most significant ones
                b[at] = (byte)((q * 256 + 242) / 243);
            }
        }
    }

    /// <summary>TQ1_0 weights · Q8_K activations (ggml_vec_dot_tq1_0_q8_K_generic).</summary>
    public static float VecDotTQ1_0Q8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Tq1Bytes, Q8_KBytes, "vec_dot tq1_0·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Tq1Bytes, Tq1Bytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            int sum = 0;
            for (int v = 0; v < QK_K; v++)
            {
                var (at, k) = Tq1Position(v);
                sum += (Trit(b[at], k) - 1) * q8[v];
            }
            sumf += (float)sum * (ReadHalf(b, 52) * Q8KScale(xb));
        }
        return sumf;
    }

    // ---------------------------------------------------------------- TQ2_0

    public static void DequantizeRowTQ2_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Tq2Bytes, "tq2_0");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Tq2Bytes, Tq2Bytes);
            float d = ReadHalf(b, 64);
            for (int v = 0; v < QK_K; v++)
                dst[i * QK_K + v] = (float)(((b[32 * (v / 128) + v % 32] >> (2 * (v / 32 % 4))) & 3) - 1) * d;
        }
    }

    public static void QuantizeRowTQ2_0Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Tq2Bytes, "tq2_0");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Tq2Bytes, Tq2Bytes);
            float id = TernaryScale(x, b, 64);
            b[..64].Clear();
            for (int v = 0; v < QK_K; v++)
                b[32 * (v / 128) + v % 32] |= (byte)(((TernaryLevel(x[v], id) + 1) & 3) << (2 * (v / 32 % 4)));
        }
    }

    /// <summary>TQ2_0 weights · Q8_K activations (ggml_vec_dot_tq2_0_q8_K_generic).</summary>
    public static float VecDotTQ2_0Q8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Tq2Bytes, Q8_KBytes, "vec_dot tq2_0·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Tq2Bytes, Tq2Bytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            int sumi = 0;
            for (int v = 0; v < QK_K; v++) sumi += q8[v] * (((b[32 * (v / 128) + v % 32] >> (2 * (v / 32 % 4))) & 3) - 1);
            float d = Q8KScale(xb) * ReadHalf(b, 64);
            sumf += (float)sumi * d;
        }
        return sumf;
    }

    // ---------------------------------------------------------------- shared

    /// <summary>Writes d = max |x| as f16 at <paramref name="dOffset"/> and returns 1/d (0 for an all-zero block).</summary>
    private static float TernaryScale(ReadOnlySpan<float> x, Span<byte> b, int dOffset)
    {
        float amax = 0;
        for (int j = 0; j < QK_K; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
        WriteHalf(b, dOffset, amax);
        return amax != 0 ? 1.0f / amax : 0.0f;
    }

    /// <summary>lroundf(x·id): −1, 0 or 1.</summary>
    private static int TernaryLevel(float x, float id) => (int)MathF.Round(x * id, MidpointRounding.AwayFromZero);
}
