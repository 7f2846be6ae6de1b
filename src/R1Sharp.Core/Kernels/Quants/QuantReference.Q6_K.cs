// Scalar reference for ggml's Q6_K: 256 values in 16 sub-blocks of 16 with signed 8-bit scales, no mins.
// Layout (210 B): ql[128] (low nibbles), qh[64] (high 2 bits), scales[16] (int8), f16 d.
// Value 128·h + 32·k + l (h 0..1, k 0..3, l 0..31): low nibble of ql[64·h + 32·(k&1) + l] (low half for k &lt; 2,
// high half for k ≥ 2); high bits 2k..2k+1 of qh[32·h + l]; q = (low | high &lt;&lt; 4) − 32; scale index 8·h + 2·k + l/16;
// x = d·scale·q.
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Q6_KBytes = 210;

    public static void DequantizeRowQ6_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Q6_KBytes, "q6_K");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q6_KBytes, Q6_KBytes);
            float d = ReadHalf(b, 208);
            for (int n = 0; n < QK_K; n += 128)
            {
                var ql = b.Slice(n / 2, 64);
                var qh = b.Slice(128 + n / 4, 32);
                var sc = b.Slice(192 + n / 16, 8);
                var y = dst.Slice(i * QK_K + n, 128);
                for (int l = 0; l < 32; ++l)
                {
                    int s = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * (sbyte)sc[s] * q1;
                    y[l + 32] = d * (sbyte)sc[s + 2] * q2;
                    y[l + 64] = d * (sbyte)sc[s + 4] * q3;
                    y[l + 96] = d * (sbyte)sc[s + 6] * q4;
                }
            }
        }
    }

    public static void QuantizeRowQ6_KReference(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeQ6_K(src, dst, default);

    /// <summary>quantize_q6_K: the reference, or with importance weights each 16 values' first fit weighted by them.</summary>
    public static void QuantizeQ6_K(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        CheckImportance(importance, src.Length, "q6_K");
        int nb = Blocks(dst.Length, src.Length, QK_K, Q6_KBytes, "q6_K");
        Span<sbyte> L = stackalloc sbyte[QK_K];
        Span<float> scales = stackalloc float[QK_K / 16];

        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Q6_KBytes, Q6_KBytes);

            float maxScale = 0, maxAbsScale = 0;
            for (int ib = 0; ib < QK_K / 16; ++ib)
            {
                var qw = importance.IsEmpty ? default : importance.Slice(QK_K * i + 16 * ib, 16);
                float scale = MakeQxQuants(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16), qw);
                scales[ib] = scale;
                float absScale = MathF.Abs(scale);
                if (absScale > maxAbsScale) { maxAbsScale = absScale; maxScale = scale; }
            }

            if (maxAbsScale < GroupMaxEps)
            {
                b.Clear();
                continue;
            }

            var bs = b.Slice(192, 16);
            float iscale = -128f / maxScale;
            WriteHalf(b, 208, 1 / iscale);
            for (int ib = 0; ib < QK_K / 16; ++ib) bs[ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));

            float dAll = ReadHalf(b, 208);
            for (int j = 0; j < QK_K / 16; ++j)
            {
                float d = dAll * (sbyte)bs[j];
                if (d == 0) continue;
                for (int ii = 0; ii < 16; ++ii)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, l)) + 32);
                }
            }

            for (int j = 0; j < QK_K; j += 128)
            {
                var ql = b.Slice(j / 2, 64);
                var qh = b.Slice(128 + j / 4, 32);
                for (int l = 0; l < 32; ++l)
                {
                    int q1 = L[j + l] & 0xF;
                    int q2 = L[j + l + 32] & 0xF;
                    int q3 = L[j + l + 64] & 0xF;
                    int q4 = L[j + l + 96] & 0xF;
                    ql[l] = (byte)(q1 | (q3 << 4));
                    ql[l + 32] = (byte)(q2 | (q4 << 4));
                    qh[l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
                }
            }
        }
    }

    /// <summary>Q6_K weights · Q8_K activations (ggml_vec_dot_q6_K_q8_K_generic, including its 8 float lanes).</summary>
    public static float VecDotQ6_KQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Q6_KBytes, Q8_KBytes, "vec_dot q6_K·q8_K");
        Span<sbyte> aux8 = stackalloc sbyte[QK_K];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();

        for (int i = 0; i < nb; ++i)
        {
            var wb = w.Slice(i * Q6_KBytes, Q6_KBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            aux32.Clear();

            for (int j = 0; j < QK_K; j += 128)
            {
                var q4 = wb.Slice(j / 2, 64);
                var qh = wb.Slice(128 + j / 4, 32);
                for (int l = 0; l < 32; ++l)
                {
                    aux8[j + l] = (sbyte)(((q4[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                    aux8[j + l + 32] = (sbyte)(((q4[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                    aux8[j + l + 64] = (sbyte)(((q4[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                    aux8[j + l + 96] = (sbyte)(((q4[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                }
            }

            int a = 0;
            for (int j = 0; j < QK_K / 16; ++j)
            {
                int scale = (sbyte)wb[192 + j];
                for (int half = 0; half < 2; ++half)
                {
                    for (int l = 0; l < 8; ++l) aux32[l] += scale * (short)(q8[a + l] * aux8[a + l]);
                    a += 8;
                }
            }
            float d = ReadHalf(wb, 208) * Q8KScale(xb);
            for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
        }
        float sumf = 0;
        for (int l = 0; l < 8; ++l) sumf += sums[l];
        return sumf;
    }
}
