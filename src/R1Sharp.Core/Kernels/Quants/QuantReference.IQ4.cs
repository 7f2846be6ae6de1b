// Scalar reference for ggml's non-linear 4-bit formats: each nibble picks one of the 16 values of kvalues_iq4nl.
//   IQ4_NL (18 B per 32): f16 d, 16 bytes of nibbles (value j < 16 the low nibble of byte j, value 16 + j its high
//     nibble); x = d·kvalues[q]. Dots with Q8_0 activations.
//   IQ4_XS (136 B per 256): f16 d, u16 scales_h (2 high bits per 32 values), 4 bytes scales_l (a low nibble per 32
//     values), 128 bytes of nibbles laid out per 32 values as IQ4_NL's; x = d·(s − 32)·kvalues[q]. Dots with Q8_K.
// dequantize_row_*, the generic ggml_vec_dot_*, quantize_row_*_ref and quantize_iq4_* (with importance weights).
using System.Buffers.Binary;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Iq4NlBytes = 18, Iq4XsBytes = 136;

    // ---------------------------------------------------------------- IQ4_NL

    public static void DequantizeRowIQ4_NL(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Iq4NlBytes, "iq4_nl");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq4NlBytes, Iq4NlBytes);
            NonLinearNibbles(b.Slice(2, 16), ReadHalf(b, 0), IqGrids.KValuesIq4Nl, dst.Slice(i * QK, QK));
        }
    }

    /// <summary>IQ4_NL weights · Q8_0 activations (ggml_vec_dot_iq4_nl_q8_0_generic).</summary>
    public static float VecDotIQ4_NLQ8_0Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Iq4NlBytes, Q8_0Bytes, "vec_dot iq4_nl·q8_0");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Iq4NlBytes, Iq4NlBytes);
            var xb = x.Slice(ib * Q8_0Bytes, Q8_0Bytes);
            float d = ReadHalf(xb, 0) * ReadHalf(wb, 0);
            sumf += d * NonLinearDot(wb.Slice(2, 16), IqGrids.KValuesIq4Nl, xb.Slice(2, 32));
        }
        return sumf;
    }

    // ---------------------------------------------------------------- IQ4_XS

    public static void DequantizeRowIQ4_XS(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq4XsBytes, "iq4_xs");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq4XsBytes, Iq4XsBytes);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
                NonLinearNibbles(b.Slice(8 + 16 * ib, 16), d * (Iq4XsScale(b, ib) - 32), IqGrids.KValuesIq4Nl, dst.Slice(i * QK_K + 32 * ib, 32));
        }
    }

    /// <summary>IQ4_XS weights · Q8_K activations (ggml_vec_dot_iq4_xs_q8_K_generic).</summary>
    public static float VecDotIQ4_XSQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq4XsBytes, Q8_KBytes, "vec_dot iq4_xs·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Iq4XsBytes, Iq4XsBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            float d4d8 = ReadHalf(b, 0) * Q8KScale(xb);
            for (int ib = 0; ib < 8; ++ib)
            {
                float dl = d4d8 * (Iq4XsScale(b, ib) - 32);
                sumf += dl * NonLinearDot(b.Slice(8 + 16 * ib, 16), IqGrids.KValuesIq4Nl, q8.Slice(32 * ib, 32));
            }
        }
        return sumf;
    }

    /// <summary>The 6-bit scale (0..63, stored +32) of 32-value sub-block ib of an IQ4_XS block.</summary>
    private static int Iq4XsScale(ReadOnlySpan<byte> b, int ib) =>
        ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((BinaryPrimitives.ReadUInt16LittleEndian(b[2..]) >> (2 * ib)) & 3) << 4);

    // ---------------------------------------------------------------- quantizers

    /// <summary>
    /// quantize_row_iq4_nl_ref: the first scale only (ntry −1). A block whose values are all below the group epsilon
    /// keeps the previous block's nibbles under its zero scale, as ggml's reuse of one level buffer does (the first
    /// block's are zero here, where ggml's buffer is uninitialized).
    /// </summary>
    public static void QuantizeRowIQ4_NLReference(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeIQ4_NL(src, dst, default, ntry: -1);

    /// <summary>quantize_iq4_nl for one row (importance weights optional, else w = x²): 15 scales tried per block.</summary>
    public static void QuantizeIQ4_NL(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance) =>
        QuantizeIQ4_NL(src, dst, importance, ntry: 7);

    private static void QuantizeIQ4_NL(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance, int ntry)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Iq4NlBytes, "iq4_nl");
        CheckImportance(importance, src.Length, "iq4_nl");
        Span<byte> L = stackalloc byte[QK];
        Span<float> weight = stackalloc float[QK], scales = stackalloc float[1];
        L.Clear();
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq4NlBytes, Iq4NlBytes);
            var qw = importance.IsEmpty ? default : importance.Slice(QK * ibl, QK);
            QuantizeNonLinear(src.Slice(QK * ibl, QK), b, qw, ntry, L, weight, scales);
        }
    }

    /// <summary>quantize_row_iq4_xs_ref: <see cref="QuantizeIQ4_XS"/> without importance weights.</summary>
    public static void QuantizeRowIQ4_XSReference(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeIQ4_XS(src, dst, default);

    /// <summary>quantize_iq4_xs for one row (importance weights optional, else w = x²): 15 scales tried per 32 values.</summary>
    public static void QuantizeIQ4_XS(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq4XsBytes, "iq4_xs");
        CheckImportance(importance, src.Length, "iq4_xs");
        Span<byte> L = stackalloc byte[QK_K];
        Span<float> weight = stackalloc float[32], scales = stackalloc float[8];
        L.Clear();
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq4XsBytes, Iq4XsBytes);
            var qw = importance.IsEmpty ? default : importance.Slice(QK_K * ibl, QK_K);
            QuantizeNonLinear(src.Slice(QK_K * ibl, QK_K), b, qw, 7, L, weight, scales);
        }
    }

    /// <summary>
    /// ggml's quantize_row_iq4_nl_impl for one super-block of x.Length values (32: IQ4_NL, 256: IQ4_XS) into b: per 32
    /// values the scale of the best weighted fit among 2·ntry + 1 tried; IQ4_XS then rounds each to a 6-bit multiple of
    /// the block scale and picks the nibbles again for it.
    /// </summary>
    private static void QuantizeNonLinear(ReadOnlySpan<float> x, Span<byte> b, ReadOnlySpan<float> qw, int ntry,
        Span<byte> L, Span<float> weight, Span<float> scales)
    {
        ReadOnlySpan<sbyte> values = IqGrids.KValuesIq4Nl;
        int n = x.Length, nsub = n / 32;
        float sigma2 = IqQuantizer.SumOfSquares(x);
        sigma2 *= 2.0f / n;
        b.Clear();
        float maxScale = 0, amaxScale = 0;
        for (int ib = 0; ib < nsub; ++ib)
        {
            var xb = x.Slice(32 * ib, 32);
            var Lb = L.Slice(32 * ib, 32);
            if (!qw.IsEmpty) IqQuantizer.ImportanceWeights(xb, qw.Slice(32 * ib, 32), sigma2, weight);
            else for (int j = 0; j < 32; ++j) weight[j] = xb[j] * xb[j];
            float amax = 0, max = 0;
            for (int j = 0; j < 32; ++j)
            {
                float ax = MathF.Abs(xb[j]);
                if (ax > amax) { amax = ax; max = xb[j]; }
            }
            if (amax < GroupMaxEps)
            {
                scales[ib] = 0;
                continue;
            }
            float d = ntry > 0 ? -max / values[0] : max / values[0];
            float id = 1 / d;
            float sumqx = 0, sumq2 = 0;
            for (int j = 0; j < 32; ++j)
            {
                int l = IqQuantizer.BestIndex(values, id * xb[j]);
                Lb[j] = (byte)l;
                float q = values[l];
                float w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0f;
            float best = d * sumqx;
            for (int itry = -ntry; itry <= ntry; ++itry)
            {
                id = (itry + values[0]) / max;
                sumqx = sumq2 = 0;
                for (int j = 0; j < 32; ++j)
                {
                    float q = values[IqQuantizer.BestIndex(values, id * xb[j])];
                    float w = weight[j];
                    sumqx += w * q * xb[j];
                    sumq2 += w * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
                {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scales[ib] = d;
            float absD = MathF.Abs(d);
            if (absD > amaxScale) { amaxScale = absD; maxScale = d; }
        }

        if (nsub > 1)
        {
            float d = -maxScale / 32;
            WriteHalf(b, 0, d);
            float id = d != 0 ? 1 / d : 0f;
            int scalesH = 0;
            for (int ib = 0; ib < nsub; ++ib)
            {
                int l = Math.Max(-32, Math.Min(31, NearestInt(id * scales[ib])));
                float dl = d * l;
                float idl = dl != 0 ? 1 / dl : 0f;
                for (int j = 0; j < 32; ++j) L[32 * ib + j] = (byte)IqQuantizer.BestIndex(values, idl * x[32 * ib + j]);
                l += 32;
                b[4 + ib / 2] |= (byte)((l & 0xF) << (4 * (ib % 2)));
                scalesH |= (l >> 4) << (2 * ib);
            }
            BinaryPrimitives.WriteUInt16LittleEndian(b[2..], (ushort)scalesH);
        }
        else
        {
            WriteHalf(b, 0, scales[0]);
            if (ntry > 0)
            {
                float id = scales[0] != 0 ? 1 / scales[0] : 0;
                for (int j = 0; j < 32; ++j) L[j] = (byte)IqQuantizer.BestIndex(values, id * x[j]);
            }
        }

        var q4 = b[(nsub > 1 ? 8 : 2)..];
        for (int i = 0; i < nsub; ++i)
            for (int j = 0; j < 16; ++j) q4[16 * i + j] = (byte)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
    }

    // ---------------------------------------------------------------- shared by IQ4_NL, IQ4_XS and MXFP4

    /// <summary>32 values d·values[nibble] of 16 bytes (low nibbles first, then high nibbles).</summary>
    private static void NonLinearNibbles(ReadOnlySpan<byte> qs, float d, ReadOnlySpan<sbyte> values, Span<float> y)
    {
        for (int j = 0; j < 16; ++j)
        {
            y[j] = d * values[qs[j] & 0xF];
            y[j + 16] = d * values[qs[j] >> 4];
        }
    }

    /// <summary>Σ values[nibble]·q8 over 32 values, the low-nibble and high-nibble halves summed apart and then added.</summary>
    private static int NonLinearDot(ReadOnlySpan<byte> qs, ReadOnlySpan<sbyte> values, ReadOnlySpan<byte> q8Bytes)
    {
        int sumi1 = 0, sumi2 = 0;
        for (int j = 0; j < 16; ++j)
        {
            sumi1 += (sbyte)q8Bytes[j] * values[qs[j] & 0xF];
            sumi2 += (sbyte)q8Bytes[j + 16] * values[qs[j] >> 4];
        }
        return sumi1 + sumi2;
    }

    private static int NonLinearDot(ReadOnlySpan<byte> qs, ReadOnlySpan<sbyte> values, ReadOnlySpan<sbyte> q8) =>
        NonLinearDot(qs, values, System.Runtime.InteropServices.MemoryMarshal.AsBytes(q8));
}
