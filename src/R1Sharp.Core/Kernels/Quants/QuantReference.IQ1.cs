// Scalar reference for ggml's 1-bit IQ formats: 256 values per block in groups of 8 from iq1s_grid (points of −1, 0, 1,
// 2048 of them, 11-bit indices), each group shifted by ±0.125 (IQ1S_DELTA). dequantize_row_*, the generic
// ggml_vec_dot_*_q8_K, and quantize_iq1_s (needs importance weights) / quantize_iq1_m.
//   IQ1_S (50 B): f16 d, 32 bytes of index low bits, 8 u16 per 32 values: 3 index high bits per group (bits 0..8),
//     a 3-bit scale (bits 12..14) and the shift's sign (bit 15); x = d·(2s + 1)·(grid + shift).
//   IQ1_M (56 B): 32 bytes of index low bits, 16 bytes: per pair of groups 3 + 3 index high bits and each group's shift
//     sign (bits 3 and 7), 8 bytes of scales: 3 bits per 16 values in bits 0..11 of each u16, the block's f16 scale in
//     their top nibbles; x = d·(2s + 1)·(grid + shift).
using System.Buffers.Binary;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Iq1SBytes = 50, Iq1MBytes = 56;
    private const float Iq1Delta = 0.125f;

    // ---------------------------------------------------------------- IQ1_S

    public static void DequantizeRowIQ1_S(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq1SBytes, "iq1_s");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq1SBytes, Iq1SBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = ReadHalf(b, 0);
            for (int ib = 0; ib < 8; ++ib)
            {
                int qh = BinaryPrimitives.ReadUInt16LittleEndian(b[(34 + 2 * ib)..]);
                float dl = d * (2 * ((qh >> 12) & 7) + 1);
                float delta = (qh & 0x8000) != 0 ? -Iq1Delta : Iq1Delta;
                for (int l = 0; l < 4; ++l)
                    ShiftedGroup(y.Slice(32 * ib + 8 * l, 8), dl, delta, IqGrids.Iq1S[b[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)]);
            }
        }
    }

    /// <summary>IQ1_S weights · Q8_K activations (ggml_vec_dot_iq1_s_q8_K_generic); the shifts through the block sums.</summary>
    public static float VecDotIQ1_SQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq1SBytes, Q8_KBytes, "vec_dot iq1_s·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            var b = w.Slice(i * Iq1SBytes, Iq1SBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            int sumi = 0, sumi1 = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                int qh = BinaryPrimitives.ReadUInt16LittleEndian(b[(34 + 2 * ib)..]);
                int ls = 2 * ((qh >> 12) & 7) + 1;
                int delta = (qh & 0x8000) != 0 ? -1 : 1;
                int lsum = 0;
                for (int l = 0; l < 4; ++l)
                    lsum += SignedGroupDot(IqGrids.Iq1S[b[2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)], q8.Slice(32 * ib + 8 * l, 8));
                sumi += ls * lsum;
                sumi1 += ls * delta * (Q8KBlockSum(xb, 2 * ib) + Q8KBlockSum(xb, 2 * ib + 1));
            }
            sumf += ReadHalf(b, 0) * Q8KScale(xb) * (sumi + Iq1Delta * sumi1);
        }
        return sumf;
    }

    // ---------------------------------------------------------------- IQ1_M

    public static void DequantizeRowIQ1_M(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Iq1MBytes, "iq1_m");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Iq1MBytes, Iq1MBytes);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = Iq1MScale(b);
            for (int ib = 0; ib < 8; ++ib)
            {
                int sc = Iq1MScales(b, ib / 2);
                float dl1 = d * (2 * ((sc >> (6 * (ib % 2))) & 7) + 1);
                float dl2 = d * (2 * ((sc >> (6 * (ib % 2) + 3)) & 7) + 1);
                for (int l = 0; l < 4; ++l)
                {
                    int qh = b[32 + 2 * ib + l / 2];
                    float delta = (qh & (l % 2 == 0 ? 0x08 : 0x80)) != 0 ? -Iq1Delta : Iq1Delta;
                    ShiftedGroup(y.Slice(32 * ib + 8 * l, 8), l < 2 ? dl1 : dl2, delta, IqGrids.Iq1S[Iq1MIndex(b, ib, l)]);
                }
            }
        }
    }

    /// <summary>IQ1_M weights · Q8_K activations (ggml_vec_dot_iq1_m_q8_K_generic).</summary>
    public static float VecDotIQ1_MQ8_KReference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK_K, Iq1MBytes, Q8_KBytes, "vec_dot iq1_m·q8_K");
        float sumf = 0;
        for (int i = 0; i < nb; i++)
        {
            var b = w.Slice(i * Iq1MBytes, Iq1MBytes);
            var xb = x.Slice(i * Q8_KBytes, Q8_KBytes);
            var q8 = Q8KQuants(xb);
            int sumi1 = 0, sumi2 = 0;
            for (int ib = 0; ib < 8; ++ib)
            {
                int sum10 = 0, sum11 = 0, sum20 = 0, sum21 = 0;
                for (int l = 0; l < 4; ++l)
                {
                    var q = q8.Slice(32 * ib + 8 * l, 8);
                    int lsum1 = SignedGroupDot(IqGrids.Iq1S[Iq1MIndex(b, ib, l)], q), lsum2 = 0;
                    for (int j = 0; j < 8; ++j) lsum2 += q[j];
                    int qh = b[32 + 2 * ib + l / 2];
                    int delta = (qh & (l % 2 == 0 ? 0x08 : 0x80)) != 0 ? -1 : 1;
                    if (l < 2) { sum10 += lsum1; sum20 += lsum2 * delta; }
                    else { sum11 += lsum1; sum21 += lsum2 * delta; }
                }
                int sc = Iq1MScales(b, ib / 2);
                int ls1 = 2 * ((sc >> (6 * (ib % 2))) & 7) + 1, ls2 = 2 * ((sc >> (6 * (ib % 2) + 3)) & 7) + 1;
                sumi1 += sum10 * ls1 + sum11 * ls2;
                sumi2 += sum20 * ls1 + sum21 * ls2;
            }
            sumf += Iq1MScale(b) * Q8KScale(xb) * (sumi1 + Iq1Delta * sumi2);
        }
        return sumf;
    }

    // ---------------------------------------------------------------- quantizers

    // the three IQ1 values with the group's shift +0.125 (x_p) or −0.125 (x_m)
    private static ReadOnlySpan<float> Iq1Plus => [-1 + Iq1Delta, Iq1Delta, 1 + Iq1Delta];
    private static ReadOnlySpan<float> Iq1Minus => [-1 - Iq1Delta, -Iq1Delta, 1 - Iq1Delta];

    /// <summary>
    /// quantize_iq1_s for one row: needs importance weights. Per 32 values the exact weighted least-squares split of the
    /// sorted values into −1, 0, 1 with either shift, then the nearest grid points; d carries ggml's 1.125 factor.
    /// </summary>
    public static void QuantizeIQ1_S(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq1SBytes, "iq1_s");
        RequireImportance(importance, src.Length, "iq1_s");
        var grid = IqGridSearch.Get(GridKind.Iq1S);
        Span<float> scales = stackalloc float[8], weight = stackalloc float[32], sumx = stackalloc float[33], sumw = stackalloc float[33];
        Span<int> idx = stackalloc int[32], shifts = stackalloc int[8], index = stackalloc int[4];
        Span<sbyte> L = stackalloc sbyte[32];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq1SBytes, Iq1SBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            float maxScale = 0;
            float sigma2 = 2 * IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 8; ++ib)
            {
                var xb = xbl.Slice(32 * ib, 32);
                IqQuantizer.ImportanceWeights(xb, importance.Slice(QK_K * ibl + 32 * ib, 32), sigma2, weight);
                scales[ib] = 0;
                shifts[ib] = 1;
                if (MaxAbs(xb) < 1e-12f) continue; // GROUP_MAX_EPS_IQ1_S
                SortedOrder(xb, idx);
                sumx[0] = sumw[0] = 0;
                for (int j = 0; j < 32; ++j)
                {
                    int i = idx[j];
                    sumx[j + 1] = sumx[j] + weight[i] * xb[i];
                    sumw[j + 1] = sumw[j] + weight[i];
                }
                float bestScore = float.MinValue, scale = MaxAbs(xb);
                int besti1 = -1, besti2 = -1, bestShift = 0;
                for (int i1 = 0; i1 <= 32; ++i1)
                {
                    for (int i2 = i1; i2 <= 32; ++i2)
                    {
                        for (int shift = 1; shift >= -1; shift -= 2)
                        {
                            var xs = shift == 1 ? Iq1Plus : Iq1Minus;
                            float sumqx = (sumx[i1] - sumx[0]) * xs[0] + (sumx[i2] - sumx[i1]) * xs[1] + (sumx[32] - sumx[i2]) * xs[2];
                            float sumq2 = (sumw[i1] - sumw[0]) * xs[0] * xs[0] + (sumw[i2] - sumw[i1]) * xs[1] * xs[1] + (sumw[32] - sumw[i2]) * xs[2] * xs[2];
                            if (sumq2 > 0 && sumqx * sumqx > bestScore * sumq2)
                            {
                                scale = sumqx / sumq2;
                                bestScore = scale * sumqx;
                                besti1 = i1; besti2 = i2; bestShift = shift;
                            }
                        }
                    }
                }
                if (besti1 < 0 || besti2 < 0 || bestShift == 0) continue;
                SplitLevels(idx, besti1, besti2, L[..32]);
                if (scale < 0)
                {
                    for (int j = 0; j < 32; ++j) L[j] = (sbyte)(2 - L[j]);
                    scale = -scale;
                    bestShift = -bestShift;
                }
                var xx = bestShift == 1 ? Iq1Plus : Iq1Minus;
                bool allOnGrid = true;
                for (int k = 0; k < 4; ++k)
                {
                    int g = grid.IndexOf(grid.Pack(L.Slice(8 * k, 8)));
                    if (g < 0)
                    {
                        allOnGrid = false;
                        g = grid.BestNeighbourIq1(xb.Slice(8 * k, 8), weight.Slice(8 * k, 8), scale, xx, L.Slice(8 * k, 8));
                    }
                    index[k] = g;
                }
                if (!allOnGrid) scale = Iq1Refit(grid, index[..4], xx, xx, weight, xb, scale);
                int h = 0;
                for (int k = 0; k < 4; ++k)
                {
                    b[2 + 4 * ib + k] = (byte)index[k];
                    h |= (index[k] >> 8) << (3 * k);
                }
                BinaryPrimitives.WriteUInt16LittleEndian(b[(34 + 2 * ib)..], (ushort)h);
                scales[ib] = scale;
                shifts[ib] = bestShift;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0) continue;
            float d = maxScale / 15;
            WriteHalf(b, 0, d * 1.125f);
            float id = 1 / d;
            for (int ib = 0; ib < 8; ++ib)
            {
                int l = Math.Max(0, Math.Min(7, NearestInt(0.5f * (id * scales[ib] - 1))));
                if (shifts[ib] == -1) l |= 8;
                int qh = BinaryPrimitives.ReadUInt16LittleEndian(b[(34 + 2 * ib)..]);
                BinaryPrimitives.WriteUInt16LittleEndian(b[(34 + 2 * ib)..], (ushort)(qh | (l << 12)));
            }
        }
    }

    /// <summary>
    /// quantize_iq1_m for one row (importance weights optional, else w = x²). Per 16 values the exact split into −1, 0, 1
    /// with each half's shift chosen (4 combinations), the nearest grid points, then one block scale refitted over the
    /// whole block; d carries ggml's 1.1125 factor.
    /// </summary>
    public static void QuantizeIQ1_M(ReadOnlySpan<float> src, Span<byte> dst, ReadOnlySpan<float> importance)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Iq1MBytes, "iq1_m");
        CheckImportance(importance, src.Length, "iq1_m");
        var grid = IqGridSearch.Get(GridKind.Iq1S);
        ReadOnlySpan<byte> masks = [0x00, 0x80, 0x08, 0x88];
        Span<float> scales = stackalloc float[16], weight = stackalloc float[16], sumqx = stackalloc float[4], sumq2 = stackalloc float[4];
        Span<int> idx = stackalloc int[16], shifts = stackalloc int[16], index = stackalloc int[2];
        Span<sbyte> L = stackalloc sbyte[16];
        Span<ushort> sc = stackalloc ushort[4];
        for (int ibl = 0; ibl < nb; ++ibl)
        {
            var b = dst.Slice(ibl * Iq1MBytes, Iq1MBytes);
            var xbl = src.Slice(QK_K * ibl, QK_K);
            b.Clear();
            float maxScale = 0;
            float sigma2 = 2 * IqQuantizer.SumOfSquares(xbl) / QK_K;
            for (int ib = 0; ib < 16; ++ib)
            {
                var xb = xbl.Slice(16 * ib, 16);
                Iq3Weights(xb, importance, QK_K * ibl + 16 * ib, sigma2, weight);
                scales[ib] = 0;
                shifts[ib] = 0;
                if (MaxAbs(xb) < 1e-7f) continue; // GROUP_MAX_EPS_IQ1_M
                SortedOrder(xb, idx);
                float bestScore = float.MinValue, scale = MaxAbs(xb);
                int besti1 = -1, besti2 = -1, bestK = -1;
                for (int i1 = 0; i1 <= 16; ++i1)
                {
                    for (int i2 = i1; i2 <= 16; ++i2)
                    {
                        // k: shift of the first and second 8 values, 0 (+,+), 1 (+,−), 2 (−,+), 3 (−,−)
                        sumqx.Clear();
                        sumq2.Clear();
                        for (int j = 0; j < 16; ++j)
                        {
                            int i = idx[j], level = j < i1 ? 0 : j < i2 ? 1 : 2;
                            float p = Iq1Plus[level], m = Iq1Minus[level];
                            bool first = i < 8;
                            Accumulate(sumqx, sumq2, 0, weight[i], p, xb[i]);
                            Accumulate(sumqx, sumq2, 1, weight[i], first ? p : m, xb[i]);
                            Accumulate(sumqx, sumq2, 2, weight[i], first ? m : p, xb[i]);
                            Accumulate(sumqx, sumq2, 3, weight[i], m, xb[i]);
                        }
                        for (int k = 0; k < 4; ++k)
                        {
                            if (sumq2[k] > 0 && sumqx[k] * sumqx[k] > bestScore * sumq2[k])
                            {
                                scale = sumqx[k] / sumq2[k];
                                bestScore = scale * sumqx[k];
                                besti1 = i1; besti2 = i2; bestK = k;
                            }
                        }
                    }
                }
                if (besti1 < 0 || besti2 < 0 || bestK < 0) continue;
                SplitLevels(idx, besti1, besti2, L[..16]);
                if (scale < 0)
                {
                    for (int j = 0; j < 16; ++j) L[j] = (sbyte)(2 - L[j]);
                    scale = -scale;
                    bestK = 3 - bestK;
                }
                ReadOnlySpan<float> x0 = bestK < 2 ? Iq1Plus : Iq1Minus, x1 = bestK % 2 == 0 ? Iq1Plus : Iq1Minus;
                bool allOnGrid = true;
                for (int k = 0; k < 2; ++k)
                {
                    int g = grid.IndexOf(grid.Pack(L.Slice(8 * k, 8)));
                    if (g < 0)
                    {
                        allOnGrid = false;
                        g = grid.BestNeighbourIq1(xb.Slice(8 * k, 8), weight.Slice(8 * k, 8), scale, k == 0 ? x0 : x1, L.Slice(8 * k, 8));
                    }
                    index[k] = g;
                }
                if (!allOnGrid) scale = Iq1Refit(grid, index, x0, x1, weight, xb, scale);
                b[2 * ib] = (byte)index[0];
                b[2 * ib + 1] = (byte)index[1];
                b[32 + ib] = (byte)((index[0] >> 8) | ((index[1] >> 8) << 4));
                scales[ib] = scale;
                shifts[ib] = bestK;
                maxScale = IqQuantizer.Max(maxScale, scale);
            }
            if (maxScale == 0) continue;
            sc.Clear();
            float d = maxScale / 15;
            float id = 1 / d;
            float sumqxF = 0, sumq2F = 0;
            for (int ib = 0; ib < 16; ++ib)
            {
                int l = Math.Max(0, Math.Min(7, NearestInt(0.5f * (id * scales[ib] - 1))));
                sc[ib / 4] |= (ushort)(l << (3 * (ib % 4)));
                b[32 + ib] |= masks[shifts[ib]];
                var xb = xbl.Slice(16 * ib, 16);
                Iq3Weights(xb, importance, QK_K * ibl + 16 * ib, sigma2, weight);
                for (int k = 0; k < 2; ++k)
                {
                    var xx = k == 0 ? (shifts[ib] < 2 ? Iq1Plus : Iq1Minus) : (shifts[ib] % 2 == 0 ? Iq1Plus : Iq1Minus);
                    int g = b[2 * ib + k] + ((b[32 + ib] << (8 - 4 * k)) & 0x700);
                    for (int j = 0; j < 8; ++j)
                    {
                        float w = weight[8 * k + j];
                        float q = xx[(grid.Coord(g, j) - 1) / 2] * (2 * l + 1);
                        sumqxF += w * q * xb[8 * k + j];
                        sumq2F += w * q * q;
                    }
                }
            }
            if (sumq2F > 0) d = sumqxF / sumq2F;
            ushort s = BitConverter.HalfToUInt16Bits((Half)(d * 1.1125f));
            sc[0] |= (ushort)((s & 0x000F) << 12);
            sc[1] |= (ushort)((s & 0x00F0) << 8);
            sc[2] |= (ushort)((s & 0x0F00) << 4);
            sc[3] |= (ushort)(s & 0xF000);
            for (int j = 0; j < 4; ++j) BinaryPrimitives.WriteUInt16LittleEndian(b[(48 + 2 * j)..], sc[j]);
        }
    }

    /// <summary>The largest |x|, by ggml's MAX from |x[0]|.</summary>
    private static float MaxAbs(ReadOnlySpan<float> x)
    {
        float max = MathF.Abs(x[0]);
        for (int i = 1; i < x.Length; ++i) max = IqQuantizer.Max(max, MathF.Abs(x[i]));
        return max;
    }

    /// <summary>
    /// The indices of x in ascending order of value, equal values in index order: what glibc's qsort (a merge sort for
    /// arrays this small) leaves with ggml's comparator, which calls equal values equal.
    /// </summary>
    private static void SortedOrder(ReadOnlySpan<float> x, Span<int> idx)
    {
        for (int j = 0; j < x.Length; ++j)
        {
            int k = j;
            while (k > 0 && x[idx[k - 1]] > x[j]) { idx[k] = idx[k - 1]; --k; }
            idx[k] = j;
        }
    }

    /// <summary>Levels 0, 1, 2 for the sorted values below i1, in [i1, i2), and from i2.</summary>
    private static void SplitLevels(ReadOnlySpan<int> idx, int i1, int i2, Span<sbyte> L)
    {
        for (int j = 0; j < L.Length; ++j) L[idx[j]] = (sbyte)(j < i1 ? 0 : j < i2 ? 1 : 2);
    }

    private static void Accumulate(Span<float> sumqx, Span<float> sumq2, int k, float w, float q, float x)
    {
        sumqx[k] += w * q * x;
        sumq2[k] += w * q * q;
    }

    /// <summary>The least-squares scale of the chosen grid points (groups 0 and 1 with values x0, the rest x1) when positive, else <paramref name="scale"/>.</summary>
    private static float Iq1Refit(IqGridSearch grid, ReadOnlySpan<int> index, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1,
        ReadOnlySpan<float> weight, ReadOnlySpan<float> xb, float scale)
    {
        float sumqx = 0, sumq2 = 0;
        for (int k = 0; k < index.Length; ++k)
        {
            var xx = k == 0 ? x0 : x1;
            for (int j = 0; j < 8; ++j)
            {
                float w = weight[8 * k + j];
                float q = xx[(grid.Coord(index[k], j) - 1) / 2];
                sumqx += w * q * xb[8 * k + j];
                sumq2 += w * q * q;
            }
        }
        return sumqx > 0 && sumq2 > 0 ? sumqx / sumq2 : scale;
    }

    /// <summary>The j-th (0..3) u16 of an IQ1_M block's scales.</summary>
    private static int Iq1MScales(ReadOnlySpan<byte> b, int j) => BinaryPrimitives.ReadUInt16LittleEndian(b[(48 + 2 * j)..]);

    /// <summary>The block's f16 scale, gathered from the top nibbles of its four scale words.</summary>
    private static float Iq1MScale(ReadOnlySpan<byte> b)
    {
        int s0 = Iq1MScales(b, 0), s1 = Iq1MScales(b, 1), s2 = Iq1MScales(b, 2), s3 = Iq1MScales(b, 3);
        ushort bits = (ushort)((s0 >> 12) | ((s1 >> 8) & 0x00F0) | ((s2 >> 4) & 0x0F00) | (s3 & 0xF000));
        return (float)BitConverter.UInt16BitsToHalf(bits);
    }

    /// <summary>The 11-bit grid index of group l of 32-value sub-block ib of an IQ1_M block.</summary>
    private static int Iq1MIndex(ReadOnlySpan<byte> b, int ib, int l) =>
        b[4 * ib + l] | ((b[32 + 2 * ib + l / 2] << (8 - 4 * (l % 2))) & 0x700);

    /// <summary>8 values dl·(grid + delta) of one IQ1 grid point.</summary>
    private static void ShiftedGroup(Span<float> y, float dl, float delta, ulong point)
    {
        for (int j = 0; j < 8; ++j) y[j] = dl * ((sbyte)(point >> (8 * j)) + delta);
    }

    /// <summary>Σ grid·q8 over one group of 8 (signed grid values).</summary>
    private static int SignedGroupDot(ulong point, ReadOnlySpan<sbyte> q8)
    {
        int sum = 0;
        for (int j = 0; j < 8; ++j) sum += q8[j] * (sbyte)(point >> (8 * j));
        return sum;
    }
}
