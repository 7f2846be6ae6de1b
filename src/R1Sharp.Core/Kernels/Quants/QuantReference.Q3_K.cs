// Scalar reference for ggml's Q3_K: 256 values in 16 sub-blocks of 16 with signed 6-bit scales, no mins.
// Layout (110 B): hmask[32], qs[64] (low 2 bits), scales[12] (16 × 6 bits), f16 d.
// Value 128·h + 32·k + l (h 0..1, k 0..3, l 0..31): low bits 2k..2k+1 of qs[32·h + l]; high bit is bit (4h + k) of
// hmask[l]; q = low − (high ? 0 : 4) in [−4, 3]. Scale j: low nibble of scales[j] (j &lt; 8) or high nibble of
// scales[j−8], plus bits 2·(j/4)..+1 of scales[8 + j%4] on top; x = d·(scale − 32)·q.
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Q3_KBytes = 110;

    public static void DequantizeRowQ3_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Q3_KBytes, "q3_K");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q3_KBytes, Q3_KBytes);
            var hm = b[..32];
            var scales = b.Slice(96, 12);
            var y = dst.Slice(i * QK_K, QK_K);
            float dAll = ReadHalf(b, 108);
            int yi = 0, sIdx = 0;
            int m = 1;
            for (int n = 0; n < QK_K; n += 128)
            {
                var q = b.Slice(32 + n / 4, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    float dl = dAll * (Q3KScale(sIdx++, scales) - 32);
                    for (int l = 0; l < 16; ++l) y[yi++] = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));

                    dl = dAll * (Q3KScale(sIdx++, scales) - 32);
                    for (int l = 0; l < 16; ++l) y[yi++] = dl * (((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) != 0 ? 0 : 4));

                    m <<= 1;
                }
            }
        }
    }

    public static void QuantizeRowQ3_KReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Q3_KBytes, "q3_K");
        Span<sbyte> L = stackalloc sbyte[QK_K];
        Span<float> scales = stackalloc float[QK_K / 16];

        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Q3_KBytes, Q3_KBytes);
            var bs = b.Slice(96, 12);

            float maxScale = 0, amax = 0;
            for (int j = 0; j < QK_K / 16; ++j)
            {
                scales[j] = MakeQ3Quants(16, 4, x.Slice(16 * j, 16), L.Slice(16 * j, 16));
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }

            bs.Clear();
            if (maxScale != 0)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < QK_K / 16; ++j)
                {
                    // ggml truncates to int8_t before clamping
                    int l = (sbyte)NearestInt(iscale * scales[j]);
                    l = Math.Max(-32, Math.Min(31, l)) + 32;
                    if (j < 8) bs[j] = (byte)(l & 0xF);
                    else bs[j - 8] |= (byte)((l & 0xF) << 4);
                    l >>= 4;
                    bs[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }
                WriteHalf(b, 108, 1 / iscale);
            }
            else
            {
                WriteHalf(b, 108, 0f);
            }

            Q3KRequantizeAndPack(x, b, L);
        }
    }

    /// <summary>The levels of one Q3_K block again from its stored scales (those of a zero scale kept), then the high bits into hmask and the low 2 bits packed.</summary>
    private static void Q3KRequantizeAndPack(ReadOnlySpan<float> x, Span<byte> b, Span<sbyte> L)
    {
        var bs = b.Slice(96, 12);
        float dAll = ReadHalf(b, 108);
        for (int j = 0; j < QK_K / 16; ++j)
        {
            float d = dAll * (Q3KScale(j, bs) - 32);
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ++ii)
            {
                int l = NearestInt(x[16 * j + ii] / d);
                L[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
            }
        }

        // High bit of value j goes to bit j/32 of hmask[j % 32].
        var hmask = b[..32];
        hmask.Clear();
        int mi = 0;
        int hmBit = 1;
        for (int j = 0; j < QK_K; ++j)
        {
            if (L[j] > 3)
            {
                hmask[mi] |= (byte)hmBit;
                L[j] -= 4;
            }
            if (++mi == QK_K / 8) { mi = 0; hmBit <<= 1; }
        }
        var qs = b.Slice(32, 64);
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                qs[j / 4 + l] = (byte)((byte)L[j + l] | ((byte)L[j + l + 32] << 2) | ((byte)L[j + l + 64] << 4) | ((byte)L[j + l + 96] << 6));
    }

    /// <summary>Q3_K weights · Q8_K activations (ggml_vec_dot_q3_K_q8_K_generic, including its 8 float lanes).</summary>
    public static float VecDotQ3_KQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Q3_KBytes, Q8_KBytes, "vec_dot q3_K·q8_K");
        Span<sbyte> aux8 = stackalloc sbyte[QK_K];
        Span<int> aux32 = stackalloc int[8];
        Span<float> sums = stackalloc float[8];
        sums.Clear();

        for (int i = 0; i < nb; ++i)
        {
            var wb = w.Slice(i * Q3_KBytes, Q3_KBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var hm = wb[..32];
            var scales = wb.Slice(96, 12);
            var q8 = Q8KQuants(xb);
            aux32.Clear();

            int a = 0, m = 1;
            for (int j = 0; j < QK_K; j += 128)
            {
                var q3 = wb.Slice(32 + j / 4, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int l = 0; l < 32; ++l)
                        aux8[a + l] = (sbyte)(((q3[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    a += 32; m <<= 1;
                }
            }

            a = 0;
            for (int j = 0; j < QK_K / 16; ++j)
            {
                int scale = Q3KScale(j, scales) - 32;
                for (int half = 0; half < 2; ++half)
                {
                    for (int l = 0; l < 8; ++l) aux32[l] += scale * (short)(q8[a + l] * aux8[a + l]);
                    a += 8;
                }
            }
            float d = ReadHalf(wb, 108) * Q8KScale(xb);
            for (int l = 0; l < 8; ++l) sums[l] += d * aux32[l];
        }
        float sumf = 0;
        for (int l = 0; l < 8; ++l) sumf += sums[l];
        return sumf;
    }
}
