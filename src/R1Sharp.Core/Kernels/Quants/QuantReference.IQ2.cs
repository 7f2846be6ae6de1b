// Scalar reference for ggml's 2-bit IQ formats: 256 values per block, groups of 8 magnitudes taken from a grid of
// points (levels 8, 25, 43) with sign bits, a 4-bit scale per 32 (IQ2_XXS) or 16 (IQ2_XS, IQ2_S) values:
// x = d·(0.5 + s)·0.25·grid·sign. dequantize_row_*, the generic ggml_vec_dot_*_q8_K and quantize_iq2_* (which need
// the importance weights of an imatrix, except IQ2_S).
//   IQ2_XXS (66 B): f16 d, then per 32 values 8 bytes as two u32: the first holds 4 grid indices (8 bits each), the
//     second 4 × 7 sign bits (the 8th sign makes the count of minus signs even: ksigns_iq2xs) and the scale in bits 28..31.
//   IQ2_XS (74 B): f16 d, 32 u16 (9-bit grid index, 7 sign bits), 8 bytes of scales (a nibble per 16 values).
//   IQ2_S (82 B): f16 d, 32 bytes of grid index low bits, 32 bytes of signs (8 per group), 8 bytes of the indices'
//     top 2 bits (2 per group), 8 bytes of scales.
using System.Buffers.Binary;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Iq2XxsBytes = 66, Iq2XsBytes = 74, Iq2SBytes = 82;

    // ---------------------------------------------------------------- IQ2_XXS

    public static void DequantizeRowIQ2_XXS(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq2XxsBytes, "iq2_xxs");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq2XxsBytes, Iq2XxsBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
            {
                uint indices = BinaryPrimitives.ReadUInt32LittleEndian(b[(2 + 8 * ib)..]);
                uint signs = BinaryPrimitives.ReadUInt32LittleEndian(b[(6 + 8 * ib)..]);
                float db = d * (0.5f + (signs >> 28)) * 0.25f;
                for (int l = 0; l < 4; ++l)
                    GridGroup(y.Slice(32 * ib + 8 * l, 8), db, IqGrids.Iq2Xxs[(indices >> (8 * l)) & 0xFF], IqGrids.KSigns[(signs >> (7 * l)) & 127]);
            }
        }
    }

    /// <summary>IQ2_XXS weights · Q8_K activations (ggml_vec_dot_iq2_xxs_q8_K_generic).</summary>
    public static float VecDotIQ2_XXSQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq2XxsBytes, Q8_KBytes, "vec_dot iq2_xxs·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Iq2XxsBytes, Iq2XxsBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            float d = ReadHalf(b, 0) * Q8KScale(xb);
            int bsum = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                uint indices = BinaryPrimitives.ReadUInt32LittleEndian(b[(2 + 8 * ib)..]);
                uint signs = BinaryPrimitives.ReadUInt32LittleEndian(b[(6 + 8 * ib)..]);
                int ls = (int)(2 * (signs >> 28) + 1);
                int sumi = 0;
                for (int l = 0; l < 4; ++l)
                    sumi += GridGroupDot(IqGrids.Iq2Xxs[(indices >> (8 * l)) & 0xFF], IqGrids.KSigns[(signs >> (7 * l)) & 127], q8.Slice(32 * ib + 8 * l, 8));
                bsum += sumi * ls;
            }
            sumf += d * bsum;
        }
        return 0.125f * sumf;
    }

    // ---------------------------------------------------------------- IQ2_XS

    public static void DequantizeRowIQ2_XS(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq2XsBytes, "iq2_xs");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq2XsBytes, Iq2XsBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
            {
                byte sc = b[66 + ib];
                float db0 = d * (0.5f + (sc & 0xF)) * 0.25f, db1 = d * (0.5f + (sc >> 4)) * 0.25f;
                for (int l = 0; l < 4; ++l)
                {
                    int q = BinaryPrimitives.ReadUInt16LittleEndian(b[(2 + 2 * (4 * ib + l))..]);
                    GridGroup(y.Slice(32 * ib + 8 * l, 8), l < 2 ? db0 : db1, IqGrids.Iq2Xs[q & 511], IqGrids.KSigns[q >> 9]);
                }
            }
        }
    }

    /// <summary>IQ2_XS weights · Q8_K activations (ggml_vec_dot_iq2_xs_q8_K_generic).</summary>
    public static float VecDotIQ2_XSQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq2XsBytes, Q8_KBytes, "vec_dot iq2_xs·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Iq2XsBytes, Iq2XsBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            float d = ReadHalf(b, 0) * Q8KScale(xb);
            int bsum = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                byte sc = b[66 + ib];
                for (int half = 0; half < 2; half++)
                {
                    int sumi = 0;
                    for (int l = 2 * half; l < 2 * half + 2; ++l)
                    {
                        int q = BinaryPrimitives.ReadUInt16LittleEndian(b[(2 + 2 * (4 * ib + l))..]);
                        sumi += GridGroupDot(IqGrids.Iq2Xs[q & 511], IqGrids.KSigns[q >> 9], q8.Slice(32 * ib + 8 * l, 8));
                    }
                    bsum += sumi * (2 * ((sc >> (4 * half)) & 0xF) + 1);
                }
            }
            sumf += d * bsum;
        }
        return 0.125f * sumf;
    }

    // ---------------------------------------------------------------- IQ2_S

    public static void DequantizeRowIQ2_S(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq2SBytes, "iq2_s");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq2SBytes, Iq2SBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
            {
                byte sc = b[74 + ib];
                float db0 = d * (0.5f + (sc & 0xF)) * 0.25f, db1 = d * (0.5f + (sc >> 4)) * 0.25f;
                for (int l = 0; l < 4; ++l)
                    GridGroup(y.Slice(32 * ib + 8 * l, 8), l < 2 ? db0 : db1, IqGrids.Iq2S[Iq2SIndex(b, ib, l)], b[34 + 4 * ib + l]);
            }
        }
    }

    /// <summary>IQ2_S weights · Q8_K activations (ggml_vec_dot_iq2_s_q8_K_generic).</summary>
    public static float VecDotIQ2_SQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq2SBytes, Q8_KBytes, "vec_dot iq2_s·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; ++i)
        {
            var b = w.Slice(i * Iq2SBytes, Iq2SBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            float d = ReadHalf(b, 0) * Q8KScale(xb);
            int bsum = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                byte sc = b[74 + ib];
                int ls1 = 1 + 2 * (sc & 0xF), ls2 = 1 + 2 * (sc >> 4);
                int sumi1 = 0, sumi2 = 0;
                for (int l = 0; l < 4; ++l)
                {
                    int s = GridGroupDot(IqGrids.Iq2S[Iq2SIndex(b, ib, l)], b[34 + 4 * ib + l], q8.Slice(32 * ib + 8 * l, 8));
                    if (l < 2) sumi1 += s;
                    else sumi2 += s;
                }
                bsum += ls1 * sumi1 + ls2 * sumi2;
            }
            sumf += d * bsum;
        }
        return 0.125f * sumf;
    }

    /// <summary>The 10-bit grid index of group l of 32-value sub-block ib of an IQ2_S block.</summary>
    private static int Iq2SIndex(ReadOnlySpan<byte> b, int ib, int l) => b[2 + 4 * ib + l] | ((b[66 + ib] << (8 - 2 * l)) & 0x300);

    // ---------------------------------------------------------------- quantizers

    /// <summary>
    /// quantize_iq2_xxs for one row: needs importance weights (one per column). Per 32 values: signs with even parity, a
    /// first scale from make_qp_quants, a search over 13 scales, a refit of every group.
    /// </summary>
    public static void QuantizeIQ2_XXS(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq2XxsBytes, "iq2_xxs");
        RequireImportance(importance, src.Length, "iq2_xxs");
        var grid = IqGridSearch.Get(GridKind.Iq2Xxs);
        Span<float> scales = stackalloc float[8], weight = stackalloc float[32], xval = stackalloc float[32], waux = stackalloc float[32];
        Span<sbyte> L = stackalloc sbyte[32], Laux = stackalloc sbyte[32];
        Span<byte> Lqp = stackalloc byte[32], signs = stackalloc byte[4];
        Span<uint> q2 = stackalloc uint[16];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq2XxsBytes, Iq2XxsBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            q2.Clear();
            float maxScale = 0;
            float sigma2 = IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 8; ++ib)
            {
                var xb = xbl.Slice(32 * ib, 32);
                IqQuantizer.ImportanceWeights(xb, importance.Slice(QK_K * ibl + 32 * ib, 32), sigma2, weight);
                float max = IqQuantizer.SplitSubBlock(xb, weight, xval, waux, signs, evenSigns: true);
                scales[ib] = 0;
                if (max < GroupMaxEps) continue;
                float scale = MakeQpQuants(32, 4, xval, Lqp, weight);
                float effMax = scale * 3;
                if (effMax <= 0) continue;
                scale = IqQuantizer.FindScale(grid, 3, xval, weight, waux, L, Laux, scale, effMax, 6, 0.1f, false, IqQuantizer.Refit.All);
                scale = IqQuantizer.PositiveScale(scale, signs, evenSigns: true);
                for (int k = 0; k < 4; ++k)
                {
                    q2[2 * ib] |= (uint)GridIndex(grid, L.Slice(8 * k, 8)) << (8 * k);
                    q2[2 * ib + 1] |= (uint)signs[k] << (7 * k);
                }
                scales[ib] = scale;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0) continue;
            float d = maxScale / 31;
            WriteHalf(b, 0, d);
            float id = 1 / d;
            for (int ib = 0; ib < 8; ++ib) q2[2 * ib + 1] |= (uint)IqQuantizer.ScaleNibble(id, scales[ib]) << 28;
            for (int j = 0; j < 16; ++j) BinaryPrimitives.WriteUInt32LittleEndian(b[(2 + 4 * j)..], q2[j]);
        }
    }

    /// <summary>quantize_iq2_xs for one row: needs importance weights. Per 16 values: signs with even parity, 19 scales tried.</summary>
    public static void QuantizeIQ2_XS(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq2XsBytes, "iq2_xs");
        RequireImportance(importance, src.Length, "iq2_xs");
        var grid = IqGridSearch.Get(GridKind.Iq2Xs);
        Span<float> scales = stackalloc float[16], weight = stackalloc float[16], xval = stackalloc float[16], waux = stackalloc float[16];
        Span<sbyte> L = stackalloc sbyte[16], Laux = stackalloc sbyte[16];
        Span<byte> signs = stackalloc byte[2];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq2XsBytes, Iq2XsBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            float maxScale = 0;
            float sigma2 = IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 16; ++ib)
            {
                var xb = xbl.Slice(16 * ib, 16);
                IqQuantizer.ImportanceWeights(xb, importance.Slice(QK_K * ibl + 16 * ib, 16), sigma2, weight);
                float max = IqQuantizer.SplitSubBlock(xb, weight, xval, waux, signs, evenSigns: true);
                scales[ib] = 0;
                if (max < GroupMaxEps) continue;
                float scale = IqQuantizer.FindScale(grid, 3, xval, weight, waux, L, Laux, max / 5, max, 9, 0.1f, true, IqQuantizer.Refit.OffGridGroups);
                scale = IqQuantizer.PositiveScale(scale, signs, evenSigns: true);
                for (int k = 0; k < 2; ++k)
                    BinaryPrimitives.WriteUInt16LittleEndian(b[(2 + 2 * (2 * ib + k))..], (ushort)(GridIndex(grid, L.Slice(8 * k, 8)) | (signs[k] << 9)));
                scales[ib] = scale;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0)
            {
                b.Clear();
                continue;
            }
            float d = maxScale / 31;
            WriteHalf(b, 0, d);
            float id = 1 / d;
            for (int ib = 0; ib < 16; ++ib) b[66 + ib / 2] |= (byte)(IqQuantizer.ScaleNibble(id, scales[ib]) << (4 * (ib % 2)));
        }
    }

    /// <summary>quantize_iq2_s for one row (importance weights optional). Per 16 values: 8 sign bits, 19 scales tried.</summary>
    public static void QuantizeIQ2_S(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq2SBytes, "iq2_s");
        CheckImportance(importance, src.Length, "iq2_s");
        var grid = IqGridSearch.Get(GridKind.Iq2S);
        Span<float> scales = stackalloc float[16], weight = stackalloc float[16], xval = stackalloc float[16], waux = stackalloc float[16];
        Span<sbyte> L = stackalloc sbyte[16], Laux = stackalloc sbyte[16];
        Span<byte> signs = stackalloc byte[2];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq2SBytes, Iq2SBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            float maxScale = 0;
            float sigma2 = 2 * IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 16; ++ib)
            {
                var xb = xbl.Slice(16 * ib, 16);
                if (!importance.IsEmpty) IqQuantizer.ImportanceWeights(xb, importance.Slice(QK_K * ibl + 16 * ib, 16), sigma2, weight);
                else for (int i = 0; i < 16; ++i) weight[i] = 0.25f * sigma2 + xb[i] * xb[i];
                float max = IqQuantizer.SplitSubBlock(xb, weight, xval, waux, signs, evenSigns: false);
                scales[ib] = 0;
                if (max < 1e-8f) continue; // GROUP_MAX_EPS_IQ2_S
                float scale = IqQuantizer.FindScale(grid, 3, xval, weight, waux, L, Laux, max / 5, max, 9, 0.1f, true, IqQuantizer.Refit.OffGridGroups);
                scale = IqQuantizer.PositiveScale(scale, signs, evenSigns: false);
                for (int k = 0; k < 2; ++k)
                {
                    int i8 = 2 * ib + k, g = GridIndex(grid, L.Slice(8 * k, 8));
                    b[2 + i8] = (byte)g;
                    b[66 + i8 / 4] |= (byte)((g >> 8) << (2 * (i8 % 4)));
                    b[34 + i8] = signs[k];
                }
                scales[ib] = scale;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0) continue;
            float d = maxScale / 31;
            WriteHalf(b, 0, d * 0.9875f);
            float id = 1 / d;
            for (int ib = 0; ib < 16; ++ib) b[74 + ib / 2] |= (byte)(IqQuantizer.ScaleNibble(id, scales[ib]) << (4 * (ib % 2)));
        }
    }

    /// <summary>The grid index of levels the search left on the grid.</summary>
    private static int GridIndex(IqGridSearch grid, ReadOnlySpan<sbyte> L)
    {
        int g = grid.IndexOf(grid.Pack(L));
        if (g < 0) throw new InvalidOperationException("quantized levels are not a grid point");
        return g;
    }

    /// <summary>Importance weights of a format that cannot do without them: one per value of the row.</summary>
    private static void RequireImportance(ReadOnlySpan<float> importance, int n, string type)
    {
        if (importance.IsEmpty && n > 0) throw new ArgumentException($"{type} needs importance weights (an imatrix)");
        CheckImportance(importance, n, type);
    }

    /// <summary>Optional importance weights: none, or one per value of the row.</summary>
    private static void CheckImportance(ReadOnlySpan<float> importance, int n, string type)
    {
        if (!importance.IsEmpty && importance.Length != n)
            throw new ArgumentException($"{type}: {importance.Length} importance weights for a row of {n} values");
    }

    // ---------------------------------------------------------------- shared by the IQ2 and IQ3 formats

    /// <summary>8 values db·magnitude·sign of one grid point; sign bit j of <paramref name="signs"/> negates value j.</summary>
    private static void GridGroup(Span<float> y, float db, ulong point, byte signs)
    {
        for (int j = 0; j < 8; ++j) y[j] = db * (byte)(point >> (8 * j)) * ((signs & (1 << j)) != 0 ? -1f : 1f);
    }

    /// <summary>Σ magnitude·sign·q8 over one group of 8.</summary>
    private static int GridGroupDot(ulong point, byte signs, ReadOnlySpan<sbyte> q8)
    {
        int sum = 0;
        for (int j = 0; j < 8; ++j) sum += (byte)(point >> (8 * j)) * q8[j] * ((signs & (1 << j)) != 0 ? -1 : 1);
        return sum;
    }
}
