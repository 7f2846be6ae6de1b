// Scalar reference for ggml's Q2_K: 256 values in 16 sub-blocks of 16, each with a 4-bit scale and a 4-bit min.
// Layout (84 B): scales[16] (low nibble = scale, high nibble = min), qs[64] (2-bit quants), f16 d, f16 dmin.
// Value 128·h + 32·k + l (h = half 0..1, k = shift index 0..3, l = 0..31) is bits 2k..2k+1 of qs[32·h + l];
// its sub-block is (128·h + 32·k + l) / 16, and x = d·scale·q − dmin·min.
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int QK_K = 256;
    private const int Q2_KBytes = 84;

    public static void DequantizeRowQ2_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Q2_KBytes, "q2_K");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q2_KBytes, Q2_KBytes);
            var scales = b[..16];
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 80);
            float min = ReadHalf(b, 82);
            int yi = 0, sIdx = 0;
            for (int n = 0; n < QK_K; n += 128)
            {
                var q = b.Slice(16 + n / 4, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    byte sc = scales[sIdx++];
                    float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) y[yi++] = dl * ((q[l] >> shift) & 3) - ml;

                    sc = scales[sIdx++];
                    dl = d * (sc & 0xF); ml = min * (sc >> 4);
                    for (int l = 0; l < 16; ++l) y[yi++] = dl * ((q[l + 16] >> shift) & 3) - ml;
                }
            }
        }
    }

    public static void QuantizeRowQ2_KReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Q2_KBytes, "q2_K");
        Span<byte> L = stackalloc byte[QK_K];
        Span<byte> Laux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[QK_K / 16];
        Span<float> scales = stackalloc float[QK_K / 16];
        const float q4scale = 15f;

        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Q2_KBytes, Q2_KBytes);
            var bs = b[..16];
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < QK_K / 16; ++j)
            {
                var xs = x.Slice(16 * j, 16);
                for (int l = 0; l < 16; ++l) weights[l] = MathF.Abs(xs[l]);
                scales[j] = MakeQkx2Quants(16, 3, xs, weights, L.Slice(16 * j, 16), out mins[j], Laux, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }

            if (maxScale > 0)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < QK_K / 16; ++j) bs[j] = (byte)NearestInt(iscale * scales[j]);
                WriteHalf(b, 80, maxScale / q4scale);
            }
            else
            {
                bs.Clear();
                WriteHalf(b, 80, 0f);
            }
            if (maxMin > 0)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < QK_K / 16; ++j) bs[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                WriteHalf(b, 82, maxMin / q4scale);
            }
            else
            {
                WriteHalf(b, 82, 0f);
            }

            Q2KRequantizeAndPack(x, b, L);
        }
    }

    /// <summary>The levels of one Q2_K block again from its stored scales and mins (those of a zero scale kept), packed 4 to a byte.</summary>
    private static void Q2KRequantizeAndPack(ReadOnlySpan<float> x, Span<byte> b, Span<byte> L)
    {
        var bs = b[..16];
        float dAll = ReadHalf(b, 80), mAll = ReadHalf(b, 82);
        for (int j = 0; j < QK_K / 16; ++j)
        {
            float d = dAll * (bs[j] & 0xF);
            if (d == 0) continue;
            float dm = mAll * (bs[j] >> 4);
            for (int ii = 0; ii < 16; ++ii)
            {
                int l = NearestInt((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
            }
        }

        var qs = b.Slice(16, 64);
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                qs[j / 4 + l] = (byte)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }

    /// <summary>Q2_K weights · Q8_K activations (ggml_vec_dot_q2_K_q8_K_generic).</summary>
    public static float VecDotQ2_KQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Q2_KBytes, Q8_KBytes, "vec_dot q2_K·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var wb = w.Slice(i * Q2_KBytes, Q2_KBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var sc = wb[..16];
            var q8 = Q8KQuants(xb);
            float yd = Q8KScale(xb);

            int summs = 0;
            for (int j = 0; j < 16; ++j) summs += Q8KBlockSum(xb, j) * (sc[j] >> 4);

            float dall = yd * ReadHalf(wb, 80);
            float dmin = yd * ReadHalf(wb, 82);

            int isum = 0, sIdx = 0, q8i = 0;
            for (int k = 0; k < QK_K / 128; ++k)
            {
                var q2 = wb.Slice(16 + 32 * k, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    int d = sc[sIdx++] & 0xF;
                    int isuml = 0;
                    for (int l = 0; l < 16; ++l) isuml += q8[q8i + l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                    d = sc[sIdx++] & 0xF;
                    isuml = 0;
                    for (int l = 16; l < 32; ++l) isuml += q8[q8i + l] * ((q2[l] >> shift) & 3);
                    isum += d * isuml;
                    q8i += 32;
                }
            }
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }
}
