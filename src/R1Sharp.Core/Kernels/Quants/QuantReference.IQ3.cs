// Scalar reference for ggml's 3-bit IQ formats: 256 values per block in groups of 4 magnitudes from a grid, signs in
// groups of 8. dequantize_row_*, the generic ggml_vec_dot_*_q8_K, and quantize_iq3_xxs / quantize_iq3_s.
//   IQ3_XXS (98 B): f16 d, 64 grid indices (8 bits, iq3xxs_grid: magnitudes 4..62), then per 32 values a u32 of
//     4 × 7 sign bits (ksigns_iq2xs) and a 4-bit scale in bits 28..31; x = d·(0.5 + s)·0.5·grid·sign.
//   IQ3_S (110 B): f16 d, 64 grid index low bytes, 8 bytes of index 9th bits (one per group of 4), 32 bytes of signs
//     (8 per group of 8), 4 bytes of scales (a nibble per 32 values); iq3s_grid magnitudes 1..15; x = d·(1 + 2s)·grid·sign.
using System.Buffers.Binary;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Iq3XxsBytes = 98, Iq3SBytes = 110;

    // ---------------------------------------------------------------- IQ3_XXS

    public static void DequantizeRowIQ3_XXS(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq3XxsBytes, "iq3_xxs");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq3XxsBytes, Iq3XxsBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
            {
                uint aux = BinaryPrimitives.ReadUInt32LittleEndian(b[(66 + 4 * ib)..]);
                float db = d * (0.5f + (aux >> 28)) * 0.5f;
                for (int l = 0; l < 4; ++l)
                {
                    ulong point = IqGrids.Iq3Xxs[b[2 + 8 * ib + 2 * l]] | (ulong)IqGrids.Iq3Xxs[b[2 + 8 * ib + 2 * l + 1]] << 32;
                    GridGroup(y.Slice(32 * ib + 8 * l, 8), db, point, IqGrids.KSigns[(aux >> (7 * l)) & 127]);
                }
            }
        }
    }

    /// <summary>IQ3_XXS weights · Q8_K activations (ggml_vec_dot_iq3_xxs_q8_K_generic).</summary>
    public static float VecDotIQ3_XXSQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq3XxsBytes, Q8_KBytes, "vec_dot iq3_xxs·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Iq3XxsBytes, Iq3XxsBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            float d = ReadHalf(b, 0) * Q8KScale(xb);
            int bsum = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                uint aux = BinaryPrimitives.ReadUInt32LittleEndian(b[(66 + 4 * ib)..]);
                int ls = (int)(2 * (aux >> 28) + 1);
                int sumi = 0;
                for (int l = 0; l < 4; ++l)
                {
                    ulong point = IqGrids.Iq3Xxs[b[2 + 8 * ib + 2 * l]] | (ulong)IqGrids.Iq3Xxs[b[2 + 8 * ib + 2 * l + 1]] << 32;
                    sumi += GridGroupDot(point, IqGrids.KSigns[(aux >> (7 * l)) & 127], q8.Slice(32 * ib + 8 * l, 8));
                }
                bsum += sumi * ls;
            }
            sumf += d * bsum;
        }
        return 0.25f * sumf;
    }

    // ---------------------------------------------------------------- IQ3_S

    public static void DequantizeRowIQ3_S(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq3SBytes, "iq3_s");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq3SBytes, Iq3SBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
            {
                float db = d * (1 + 2 * ((b[106 + ib / 2] >> (4 * (ib % 2))) & 0xF));
                for (int l = 0; l < 4; ++l)
                    GridGroup(y.Slice(32 * ib + 8 * l, 8), db, Iq3SPoint(b, ib, l), b[74 + 4 * ib + l]);
            }
        }
    }

    /// <summary>IQ3_S weights · Q8_K activations (ggml_vec_dot_iq3_s_q8_K_generic).</summary>
    public static float VecDotIQ3_SQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq3SBytes, Q8_KBytes, "vec_dot iq3_s·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Iq3SBytes, Iq3SBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            float d = ReadHalf(b, 0) * Q8KScale(xb);
            int bsum = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                int ls = 2 * ((b[106 + ib / 2] >> (4 * (ib % 2))) & 0xF) + 1;
                int sumi = 0;
                for (int l = 0; l < 4; ++l) sumi += GridGroupDot(Iq3SPoint(b, ib, l), b[74 + 4 * ib + l], q8.Slice(32 * ib + 8 * l, 8));
                bsum += sumi * ls;
            }
            sumf += d * bsum;
        }
        return sumf;
    }

    // ---------------------------------------------------------------- quantizers

    /// <summary>quantize_row_iq3_xxs_ref: <see cref="QuantizeIQ3_XXS"/> without importance weights.</summary>
    public static void QuantizeRowIQ3_XXSReference(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeIQ3_XXS(src, dst, default);

    /// <summary>
    /// quantize_iq3_xxs for one row (importance weights optional, else w = x²). Per 32 values: signs with even parity,
    /// 31 scales tried, a refit of the groups left off the grid; d carries ggml's 1.0125 factor.
    /// </summary>
    public static void QuantizeIQ3_XXS(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq3XxsBytes, "iq3_xxs");
        CheckImportance(importance, src.Length, "iq3_xxs");
        var grid = IqGridSearch.Get(GridKind.Iq3Xxs);
        Span<float> scales = stackalloc float[8], weight = stackalloc float[32], xval = stackalloc float[32], waux = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32], Laux = stackalloc sbyte[32];
        Span<byte> signs = stackalloc byte[4];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq3XxsBytes, Iq3XxsBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            float maxScale = 0;
            float sigma2 = 2 * IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 8; ++ib)
            {
                var xb = xbl.Slice(32 * ib, 32);
                Iq3Weights(xb, importance, QK_K * ibl + 32 * ib, sigma2, weight);
                float max = IqQuantizer.SplitSubBlock(xb, weight, xval, waux, signs, evenSigns: true);
                scales[ib] = 0;
                if (max < 1e-8f) continue; // GROUP_MAX_EPS_IQ3_XXS
                float scale = IqQuantizer.FindScale(grid, 8, xval, weight, waux, L, Laux, max / 15, max, 15, 0.2f, true, IqQuantizer.Refit.OffGridGroups);
                scale = IqQuantizer.PositiveScale(scale, signs, evenSigns: true);
                for (int k = 0; k < 8; ++k) b[2 + 8 * ib + k] = (byte)GridIndex(grid, L.Slice(4 * k, 4));
                BinaryPrimitives.WriteUInt32LittleEndian(b[(66 + 4 * ib)..], (uint)(signs[0] | (signs[1] << 7) | (signs[2] << 14) | (signs[3] << 21)));
                scales[ib] = scale;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0)
            {
                b.Clear();
                continue;
            }
            float d = maxScale / 31;
            WriteHalf(b, 0, d * 1.0125f);
            float id = 1 / d;
            for (int ib = 0; ib < 8; ++ib) b[66 + 4 * ib + 3] |= (byte)(IqQuantizer.ScaleNibble(id, scales[ib]) << 4);
        }
    }

    /// <summary>quantize_row_iq3_s_ref: <see cref="QuantizeIQ3_S"/> without importance weights.</summary>
    public static void QuantizeRowIQ3_SReference(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeIQ3_S(src, dst, default);

    /// <summary>
    /// quantize_iq3_s for one row (importance weights optional, else w = x²). Per 32 values: 8 sign bits per group,
    /// 19 scales tried, a refit of every group when any was off the grid; d carries ggml's 1.033 factor.
    /// </summary>
    public static void QuantizeIQ3_S(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq3SBytes, "iq3_s");
        CheckImportance(importance, src.Length, "iq3_s");
        var grid = IqGridSearch.Get(GridKind.Iq3S);
        Span<float> scales = stackalloc float[8], weight = stackalloc float[32], xval = stackalloc float[32], waux = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32], Laux = stackalloc sbyte[32];
        Span<byte> signs = stackalloc byte[4];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq3SBytes, Iq3SBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            float maxScale = 0;
            float sigma2 = 2 * IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 8; ++ib)
            {
                var xb = xbl.Slice(32 * ib, 32);
                Iq3Weights(xb, importance, QK_K * ibl + 32 * ib, sigma2, weight);
                float max = IqQuantizer.SplitSubBlock(xb, weight, xval, waux, signs, evenSigns: false);
                scales[ib] = 0;
                if (max == 0) continue;
                float scale = IqQuantizer.FindScale(grid, 8, xval, weight, waux, L, Laux, max / 15, max, 9, 0.2f, false, IqQuantizer.Refit.AllIfAnyOffGrid);
                scale = IqQuantizer.PositiveScale(scale, signs, evenSigns: false);
                for (int k = 0; k < 8; ++k)
                {
                    int g = GridIndex(grid, L.Slice(4 * k, 4));
                    b[2 + 8 * ib + k] = (byte)g;
                    b[66 + ib] |= (byte)((g >> 8) << k);
                }
                signs.CopyTo(b[(74 + 4 * ib)..]);
                scales[ib] = scale;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0) continue;
            float d = maxScale / 31;
            WriteHalf(b, 0, d * 1.033f);
            float id = 1 / d;
            for (int ib = 0; ib < 8; ib += 2)
                b[106 + ib / 2] = (byte)(IqQuantizer.ScaleNibble(id, scales[ib]) | (IqQuantizer.ScaleNibble(id, scales[ib + 1]) << 4));
        }
    }

    /// <summary>The IQ3 weights: importance·√(σ² + x²) with an imatrix, else x².</summary>
    private static void Iq3Weights(ReadOnlySpan<float> xb, ReadOnlySpan<float> importance, int at, float sigma2, Span<float> weight)
    {
        if (!importance.IsEmpty) IqQuantizer.ImportanceWeights(xb, importance.Slice(at, xb.Length), sigma2, weight);
        else for (int i = 0; i < xb.Length; ++i) weight[i] = xb[i] * xb[i];
    }

    /// <summary>The 8 magnitudes of group l (two grid points) of 32-value sub-block ib of an IQ3_S block.</summary>
    private static ulong Iq3SPoint(ReadOnlySpan<byte> b, int ib, int l)
    {
        int qh = b[66 + ib];
        int g1 = b[2 + 8 * ib + 2 * l] | ((qh << (8 - 2 * l)) & 256);
        int g2 = b[2 + 8 * ib + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        return IqGrids.Iq3S[g1] | (ulong)IqGrids.Iq3S[g2] << 32;
    }
}
