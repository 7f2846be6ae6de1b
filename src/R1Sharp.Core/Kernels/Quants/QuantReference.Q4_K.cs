// Scalar reference for ggml's Q4_K and Q5_K: 256 values in 8 sub-blocks of 32, each with a 6-bit scale and a
// 6-bit min (packed in 12 bytes, see QuantMath.GetScaleMinK4); x = d·scale·q − dmin·min.
// Q4_K (144 B): f16 d, f16 dmin, scales[12], qs[128]. Value 64·g + l (g 0..3, l 0..31) is the low nibble of
//   qs[32·g + l] (sub-block 2g); value 64·g + 32 + l is its high nibble (sub-block 2g+1).
// Q5_K (176 B): f16 d, f16 dmin, scales[12], qh[32], qs[128]. Nibbles as Q4_K; the 5th bit of the value in
//   sub-block s (0..7) at position l is bit s of qh[l].
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Q4_KBytes = 144, Q5_KBytes = 176;

    // ---------------------------------------------------------------- Q4_K

    public static void DequantizeRowQ4_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Q4_KBytes, "q4_K");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q4_KBytes, Q4_KBytes);
            var scales = b.Slice(4, 12);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            float min = ReadHalf(b, 2);
            int yi = 0;
            for (int j = 0, s = 0; j < QK_K; j += 64, s += 2)
            {
                var q = b.Slice(16 + j / 2, 32);
                GetScaleMinK4(s, scales, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                GetScaleMinK4(s + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; ++l) y[yi++] = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; ++l) y[yi++] = d2 * (q[l] >> 4) - m2;
            }
        }
    }

    public static void QuantizeRowQ4_KReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Q4_KBytes, "q4_K");
        Span<byte> L = stackalloc byte[QK_K];
        for (int i = 0; i < nb; i++)
        {
            var b = dst.Slice(i * Q4_KBytes, Q4_KBytes);
            QuantizeScalesMinsK(src.Slice(i * QK_K, QK_K), b, L, 15, -1f, 0.1f, 20);
            PackQ4K(L, b);
        }
    }

    /// <summary>Q4_K weights · Q8_K activations (ggml_vec_dot_q4_K_q8_K_generic, including its 8 float lanes).</summary>
    public static float VecDotQ4_KQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Q4_KBytes, Q8_KBytes, "vec_dot q4_K·q8_K");
        Span<sbyte> aux8 = stackalloc sbyte[QK_K];
        return DotScalesMinsK(nb, w, Q4_KBytes, x, aux8, static (wb, a) =>
        {
            var q4 = wb.Slice(16, 128);
            for (int j = 0; j < QK_K / 64; ++j)
                for (int l = 0; l < 32; ++l)
                {
                    a[64 * j + l] = (sbyte)(q4[32 * j + l] & 0xF);
                    a[64 * j + 32 + l] = (sbyte)(q4[32 * j + l] >> 4);
                }
        });
    }

    // ---------------------------------------------------------------- Q5_K

    public static void DequantizeRowQ5_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Q5_KBytes, "q5_K");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q5_KBytes, Q5_KBytes);
            var scales = b.Slice(4, 12);
            var qh = b.Slice(16, 32);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            float min = ReadHalf(b, 2);
            int yi = 0;
            int u1 = 1, u2 = 2;
            for (int j = 0, s = 0; j < QK_K; j += 64, s += 2)
            {
                var ql = b.Slice(48 + j / 2, 32);
                GetScaleMinK4(s, scales, out byte sc, out byte m);
                float d1 = d * sc, m1 = min * m;
                GetScaleMinK4(s + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; ++l) y[yi++] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; ++l) y[yi++] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
                u1 <<= 2; u2 <<= 2;
            }
        }
    }

    public static void QuantizeRowQ5_KReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Q5_KBytes, "q5_K");
        Span<byte> L = stackalloc byte[QK_K];
        for (int i = 0; i < nb; i++)
        {
            var b = dst.Slice(i * Q5_KBytes, Q5_KBytes);
            QuantizeScalesMinsK(src.Slice(i * QK_K, QK_K), b, L, 31, -0.5f, 0.1f, 15);
            PackQ5K(L, b);
        }
    }

    /// <summary>Q5_K weights · Q8_K activations (ggml_vec_dot_q5_K_q8_K_generic, including its 8 float lanes).</summary>
    public static float VecDotQ5_KQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Q5_KBytes, Q8_KBytes, "vec_dot q5_K·q8_K");
        Span<sbyte> aux8 = stackalloc sbyte[QK_K];
        return DotScalesMinsK(nb, w, Q5_KBytes, x, aux8, static (wb, a) =>
        {
            var hm = wb.Slice(16, 32);
            var q4 = wb.Slice(48, 128);
            int m = 1;
            for (int j = 0; j < QK_K / 64; ++j)
            {
                for (int l = 0; l < 32; ++l) a[64 * j + l] = (sbyte)((q4[32 * j + l] & 0xF) + ((hm[l] & m) != 0 ? 16 : 0));
                m <<= 1;
                for (int l = 0; l < 32; ++l) a[64 * j + 32 + l] = (sbyte)((q4[32 * j + l] >> 4) + ((hm[l] & m) != 0 ? 16 : 0));
                m <<= 1;
            }
        });
    }

    // ---------------------------------------------------------------- shared by Q4_K and Q5_K

    /// <summary>
    /// The part of quantize_row_q4_K_ref / q5_K_ref before bit packing: per sub-block make_qkx2_quants with weights
    /// av_x + |x|, the 6-bit scales and mins relative to the block maxima, d and dmin, and the final levels in L.
    /// </summary>
    private static void QuantizeScalesMinsK(ReadOnlySpan<float> x, Span<byte> b, Span<byte> L, int nmax,
        float rmin, float rdelta, int nstep)
    {
        Span<byte> Laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[QK_K / 32];
        Span<float> scales = stackalloc float[QK_K / 32];
        var bs = b.Slice(4, 12);

        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < QK_K / 32; ++j)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; ++l) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], Laux, rmin, rdelta, nstep, false);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }

        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < QK_K / 32; ++j)
        {
            // ggml stores nearest_int into uint8_t first (wrapping), then clamps to 63
            byte ls = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
            byte lm = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                bs[j] = ls;
                bs[j + 4] = lm;
            }
            else
            {
                bs[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                bs[j - 4] |= (byte)((ls >> 4) << 6);
                bs[j] |= (byte)((lm >> 4) << 6);
            }
        }
        WriteHalf(b, 0, maxScale / 63f);
        WriteHalf(b, 2, maxMin / 63f);
        RequantizeScalesMinsK(x, b, L, nmax);
    }

    /// <summary>The levels of a Q4_K/Q5_K block again from its stored 6-bit scales and mins (those of a zero scale kept).</summary>
    private static void RequantizeScalesMinsK(ReadOnlySpan<float> x, ReadOnlySpan<byte> b, Span<byte> L, int nmax)
    {
        var bs = b.Slice(4, 12);
        float dAll = ReadHalf(b, 0), mAll = ReadHalf(b, 2);
        for (int j = 0; j < QK_K / 32; ++j)
        {
            GetScaleMinK4(j, bs, out byte sc, out byte m);
            float d = dAll * sc;
            if (d == 0) continue;
            float dm = mAll * m;
            for (int ii = 0; ii < 32; ++ii)
            {
                int l = NearestInt((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, l));
            }
        }
    }

    /// <summary>Q4_K's nibbles: values 64g + l and 64g + 32 + l share byte 32g + l.</summary>
    private static void PackQ4K(ReadOnlySpan<byte> L, Span<byte> b)
    {
        var q = b.Slice(16, 128);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l)
                q[j / 2 + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
    }

    /// <summary>Q5_K's nibbles as Q4_K's, the fifth bit of sub-block s at bit s of qh.</summary>
    private static void PackQ5K(ReadOnlySpan<byte> L, Span<byte> b)
    {
        var qh = b.Slice(16, 32);
        qh.Clear();
        int m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64)
        {
            var ql = b.Slice(48 + n / 2, 32);
            for (int j = 0; j < 32; ++j)
            {
                int l1 = L[n + j];
                if (l1 > 15) { l1 -= 16; qh[j] |= (byte)m1; }
                int l2 = L[n + j + 32];
                if (l2 > 15) { l2 -= 16; qh[j] |= (byte)m2; }
                ql[j] = (byte)(l1 | (l2 << 4));
            }
            m1 <<= 2; m2 <<= 2;
        }
    }

    private delegate void UnpackK(ReadOnlySpan<byte> block, Span<sbyte> aux8);

    /// <summary>
    /// The shared body of ggml's generic Q4_K/Q5_K · Q8_K dots: unpacked quants times Q8_K quants, scaled per
    /// sub-block of 32 into 8 integer lanes; mins through the Q8_K block sums.
    /// </summary>
    private static float DotScalesMinsK(int nb, ReadOnlySpan<byte> w, int blockBytes, ReadOnlySpan<byte> x,
        Span<sbyte> aux8, UnpackK unpack)
    {
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        Span<byte> scales = stackalloc byte[8];
        Span<byte> mins = stackalloc byte[8];
        sums.Clear();
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var wb = w.Slice(i * blockBytes, blockBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            unpack(wb, aux8);
            for (int j = 0; j < 8; ++j) GetScaleMinK4(j, wb.Slice(4, 12), out scales[j], out mins[j]);
            aux32.Clear();

            int sumi = 0;
            for (int j = 0; j < QK_K / 16; ++j) sumi += Q8KBlockSum(xb, j) * mins[j / 2];

            int a = 0;
            for (int j = 0; j < QK_K / 32; ++j)
            {
                int scale = scales[j];
                for (int quarter = 0; quarter < 4; ++quarter)
                {
                    for (int l = 0; l < 8; ++l) aux32[l] += scale * (short)(q8[a + l] * aux8[a + l]);
                    a += 8;
                }
            }
            float yd = Q8KScale(xb);
            float d = ReadHalf(wb, 0) * yd;
            for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
            float dmin = ReadHalf(wb, 2) * yd;
            sumf -= dmin * sumi;
        }
        for (int l = 0; l < 8; ++l) sumf += sums[l];
        return sumf;
    }
}
