// ggml's quantize_* of the legacy and K-quant types with importance weights (what llama-quantize writes with an
// imatrix): quantize_row_q2_K_impl … quantize_row_q6_K_impl and quantize_row_q4_0_impl … quantize_row_q5_1_impl.
// Each value's weight is its column's importance times √(σ² + x²); the sub-block scales come from weighted fits
// (make_qkx3_quants for the asymmetric types, make_qx_quants for the symmetric ones) and the block scales from
// make_qp_quants over the sub-block weights. Without importance weights each is the type's reference quantizer.
using System.Buffers.Binary;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    // ---------------------------------------------------------------- K-quants

    /// <summary>quantize_q2_K: the reference without importance weights.</summary>
    public static void QuantizeQ2_K(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ2_KReference(src, dst); return; }
        int nb = Blocks(dst.Length, src.Length, QK_K, Q2_KBytes, "q2_K");
        CheckImportance(importance, src.Length, "q2_K");
        Span<byte> L = stackalloc byte[QK_K], Laux = stackalloc byte[16], Ls = stackalloc byte[16], Lm = stackalloc byte[16];
        Span<float> mins = stackalloc float[16], scales = stackalloc float[16], sw = stackalloc float[16], weight = stackalloc float[16];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Q2_KBytes, Q2_KBytes);
            float sigma2 = IqQuantizer.SumOfSquares(x) / QK_K;
            for (int j = 0; j < 16; ++j)
            {
                var xs = x.Slice(16 * j, 16);
                IqQuantizer.ImportanceWeights(xs, importance.Slice(QK_K * i + 16 * j, 16), sigma2, weight);
                sw[j] = 0;
                for (int l = 0; l < 16; ++l) sw[j] += weight[l];
                scales[j] = MakeQkx3Quants(16, 3, xs, weight, L.Slice(16 * j, 16), out mins[j], Laux, -0.9f, 0.05f, 36, false);
            }
            float dm = MakeQpQuants(16, 15, scales, Ls, sw);
            float mm = MakeQpQuants(16, 15, mins, Lm, sw);
            WriteHalf(b, 80, dm);
            WriteHalf(b, 82, mm);
            for (int j = 0; j < 16; ++j) b[j] = (byte)(Ls[j] | (Lm[j] << 4));
            Q2KRequantizeAndPack(x, b, L);
        }
    }

    /// <summary>quantize_q3_K: the reference without importance weights.</summary>
    public static void QuantizeQ3_K(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ3_KReference(src, dst); return; }
        int nb = Blocks(dst.Length, src.Length, QK_K, Q3_KBytes, "q3_K");
        CheckImportance(importance, src.Length, "q3_K");
        Span<sbyte> L = stackalloc sbyte[QK_K], Ls = stackalloc sbyte[16];
        Span<float> scales = stackalloc float[16], sw = stackalloc float[16], weight = stackalloc float[16];
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Q3_KBytes, Q3_KBytes);
            float sigma2 = 2 * IqQuantizer.SumOfSquares(x) / QK_K;
            for (int j = 0; j < 16; ++j)
            {
                var xs = x.Slice(16 * j, 16);
                IqQuantizer.ImportanceWeights(xs, importance.Slice(QK_K * i + 16 * j, 16), sigma2, weight);
                float sumw = 0;
                for (int l = 0; l < 16; ++l) sumw += weight[l];
                sw[j] = sumw;
                scales[j] = MakeQxQuants(16, 4, xs, L.Slice(16 * j, 16), weight);
            }
            var bs = b.Slice(96, 12);
            bs.Clear();
            float dBlock = MakeQxQuants(16, 32, scales, Ls, sw);
            for (int j = 0; j < 16; ++j)
            {
                int l = Ls[j];
                if (j < 8) bs[j] = (byte)(l & 0xF);
                else bs[j - 8] |= (byte)((l & 0xF) << 4);
                l >>= 4;
                bs[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
            }
            WriteHalf(b, 108, dBlock);
            Q3KRequantizeAndPack(x, b, L);
        }
    }

    /// <summary>quantize_q4_K: the reference without importance weights.</summary>
    public static void QuantizeQ4_K(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ4_KReference(src, dst); return; }
        int nb = Blocks(dst.Length, src.Length, QK_K, Q4_KBytes, "q4_K");
        CheckImportance(importance, src.Length, "q4_K");
        Span<byte> L = stackalloc byte[QK_K];
        for (int i = 0; i < nb; i++)
        {
            var b = dst.Slice(i * Q4_KBytes, Q4_KBytes);
            WeightedScalesMinsK(src.Slice(i * QK_K, QK_K), importance.Slice(i * QK_K, QK_K), b, L, 15, clampScales: false);
            PackQ4K(L, b);
        }
    }

    /// <summary>quantize_q5_K: the reference without importance weights.</summary>
    public static void QuantizeQ5_K(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ5_KReference(src, dst); return; }
        int nb = Blocks(dst.Length, src.Length, QK_K, Q5_KBytes, "q5_K");
        CheckImportance(importance, src.Length, "q5_K");
        Span<byte> L = stackalloc byte[QK_K];
        for (int i = 0; i < nb; i++)
        {
            var b = dst.Slice(i * Q5_KBytes, Q5_KBytes);
            WeightedScalesMinsK(src.Slice(i * QK_K, QK_K), importance.Slice(i * QK_K, QK_K), b, L, 31, clampScales: true);
            PackQ5K(L, b);
        }
    }

    /// <summary>
    /// The weighted part of quantize_row_q4_K_impl / q5_K_impl before bit packing: per sub-block of 32 a
    /// make_qkx3_quants fit, the 8 scales and 8 mins to 6 bits by make_qp_quants weighted by the sub-blocks' total
    /// weights (Q5_K clamps them to 63, Q4_K does not), d and dmin, then the levels again from the stored values.
    /// </summary>
    private static void WeightedScalesMinsK(ReadOnlySpan<float> x, ReadOnlySpan<float> qw, Span<byte> b, Span<byte> L, int nmax, bool clampScales)
    {
        Span<byte> Laux = stackalloc byte[32], Ls = stackalloc byte[8], Lm = stackalloc byte[8];
        Span<float> weights = stackalloc float[32], sw = stackalloc float[8], mins = stackalloc float[8], scales = stackalloc float[8];
        float sigma2 = 2 * IqQuantizer.SumOfSquares(x) / QK_K;
        for (int j = 0; j < 8; ++j)
        {
            var xs = x.Slice(32 * j, 32);
            IqQuantizer.ImportanceWeights(xs, qw.Slice(32 * j, 32), sigma2, weights);
            float sumw = 0;
            for (int l = 0; l < 32; ++l) sumw += weights[l];
            sw[j] = sumw;
            scales[j] = MakeQkx3Quants(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], Laux, -0.9f, 0.05f, 36, false);
        }
        float dBlock = MakeQpQuants(8, 63, scales, Ls, sw);
        float mBlock = MakeQpQuants(8, 63, mins, Lm, sw);
        var bs = b.Slice(4, 12);
        for (int j = 0; j < 8; ++j)
        {
            byte ls = clampScales ? Math.Min((byte)63, Ls[j]) : Ls[j];
            byte lm = clampScales ? Math.Min((byte)63, Lm[j]) : Lm[j];
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
        WriteHalf(b, 0, dBlock);
        WriteHalf(b, 2, mBlock);
        RequantizeScalesMinsK(x, b, L, nmax);
    }

    // ---------------------------------------------------------------- legacy 32-value blocks

    /// <summary>quantize_q4_0: with importance weights, each block's scale from a weighted make_qx_quants fit.</summary>
    public static void QuantizeQ4_0(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ4_0Reference(src, dst); return; }
        WeightedSymmetric(src, dst, importance, 8, Q4_0Bytes, "q4_0", static (b, L) =>
        {
            for (int j = 0; j < 16; ++j) b[2 + j] = (byte)(L[j] | (L[j + 16] << 4));
        });
    }

    /// <summary>quantize_q5_0: with importance weights, each block's scale from a weighted make_qx_quants fit.</summary>
    public static void QuantizeQ5_0(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ5_0Reference(src, dst); return; }
        WeightedSymmetric(src, dst, importance, 16, Q5_0Bytes, "q5_0", static (b, L) => PackFiveBits(b, 6, 2, L));
    }

    /// <summary>quantize_q4_1: with importance weights, each block's scale and min from a weighted make_qkx3_quants fit.</summary>
    public static void QuantizeQ4_1(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ4_1Reference(src, dst); return; }
        WeightedAsymmetric(src, dst, importance, 15, Q4_1Bytes, "q4_1", static (b, L) =>
        {
            for (int j = 0; j < 16; ++j) b[4 + j] = (byte)(L[j] | (L[j + 16] << 4));
        });
    }

    /// <summary>quantize_q5_1: with importance weights, each block's scale and min from a weighted make_qkx3_quants fit.</summary>
    public static void QuantizeQ5_1(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        if (importance.IsEmpty) { QuantizeRowQ5_1Reference(src, dst); return; }
        WeightedAsymmetric(src, dst, importance, 31, Q5_1Bytes, "q5_1", static (b, L) => PackFiveBits(b, 8, 4, L));
    }

    private delegate void PackLegacy(Span<byte> block, ReadOnlySpan<byte> L);

    /// <summary>Per value √(σ² + x²) times its column's importance, σ² the mean square of the whole row (as ggml's legacy _impl quantizers take it).</summary>
    private static float RowSigma2(ReadOnlySpan<float> x) => IqQuantizer.SumOfSquares(x) / x.Length;

    private static void WeightedSymmetric(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance, int nmax, int blockBytes,
        string type, PackLegacy pack)
    {
        int nb = Blocks(dst.Length, src.Length, QK, blockBytes, type);
        CheckImportance(importance, src.Length, type);
        Span<float> weight = stackalloc float[QK];
        Span<sbyte> L = stackalloc sbyte[QK];
        float sigma2 = nb == 0 ? 0 : RowSigma2(src);
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = src.Slice(QK * ib, QK);
            var b = dst.Slice(blockBytes * ib, blockBytes);
            IqQuantizer.ImportanceWeights(xb, importance.Slice(QK * ib, QK), sigma2, weight);
            float d = MakeQxQuants(QK, nmax, xb, L, weight);
            WriteHalf(b, 0, d);
            pack(b, System.Runtime.InteropServices.MemoryMarshal.AsBytes(L));
        }
    }

    private static void WeightedAsymmetric(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance, int nmax, int blockBytes,
        string type, PackLegacy pack)
    {
        int nb = Blocks(dst.Length, src.Length, QK, blockBytes, type);
        CheckImportance(importance, src.Length, type);
        Span<float> weight = stackalloc float[QK];
        Span<byte> L = stackalloc byte[QK], Laux = stackalloc byte[QK];
        float sigma2 = nb == 0 ? 0 : RowSigma2(src);
        for (int ib = 0; ib < nb; ++ib)
        {
            var xb = src.Slice(QK * ib, QK);
            var b = dst.Slice(blockBytes * ib, blockBytes);
            IqQuantizer.ImportanceWeights(xb, importance.Slice(QK * ib, QK), sigma2, weight);
            float d = MakeQkx3Quants(QK, nmax, xb, weight, L, out float min, Laux, -0.9f, 0.05f, 36, false);
            WriteHalf(b, 0, d);
            WriteHalf(b, 2, -min);
            pack(b, L);
        }
    }

    /// <summary>A 5-bit block's nibbles at <paramref name="qsAt"/> (value j low, j + 16 high) and fifth bits in the u32 at <paramref name="qhAt"/>.</summary>
    private static void PackFiveBits(Span<byte> b, int qsAt, int qhAt, ReadOnlySpan<byte> L)
    {
        uint qh = 0;
        for (int j = 0; j < 16; ++j)
        {
            byte xi0 = L[j], xi1 = L[j + 16];
            b[qsAt + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= ((xi0 & 0x10u) >> 4) << j;
            qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(b[qhAt..], qh);
    }
}
