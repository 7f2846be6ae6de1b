// The pieces ggml's IQ quantizers (quantize_iq2_xxs … quantize_iq3_s) share: the importance weight of each value,
// the sign split (magnitudes plus sign bits, with the even-parity rule of the formats that store 7 sign bits), and
// the scale search over grid points: try a range of scales near max/(2·kMaxQ − 1), round each group of magnitudes to
// levels, move groups that fall off the grid to their best neighbour, keep the scale of the best weighted
// least-squares fit, then refit once from the chosen scale. The float operations follow ggml's order so the bytes
// match quantize_* bit for bit.
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

internal static class IqQuantizer
{
    /// <summary>Which groups the refit after the scale search rounds again from the best scale.</summary>
    public enum Refit
    {
        /// <summary>Those the best scale left off the grid (IQ2_XS, IQ2_S, IQ3_XXS).</summary>
        OffGridGroups,
        /// <summary>All of them, when any is off the grid (IQ3_S).</summary>
        AllIfAnyOffGrid,
        /// <summary>All of them, always (IQ2_XXS).</summary>
        All,
    }

    /// <summary>Σ x² over a block, added in order.</summary>
    public static float SumOfSquares(ReadOnlySpan<float> x)
    {
        float s = 0;
        for (int i = 0; i < x.Length; ++i) s += x[i] * x[i];
        return s;
    }

    /// <summary>qw·√(σ² + x²) per value: the importance of the imatrix scaled by the value's size.</summary>
    public static void ImportanceWeights(ReadOnlySpan<float> x, ReadOnlySpan<float> qw, float sigma2, Span<float> weight)
    {
        for (int i = 0; i < x.Length; ++i) weight[i] = qw[i] * MathF.Sqrt(sigma2 + x[i] * x[i]);
    }

    /// <summary>
    /// The magnitudes of a group of 8 into xval and their sign bits returned. With <paramref name="evenSigns"/> (formats
    /// that store 7 sign bits and infer the 8th) an odd count of negatives flips the value of least w·x² to keep the count
    /// even: its magnitude is stored negated, and the 7 low bits are returned.
    /// </summary>
    public static byte SplitSigns(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> xval, bool evenSigns)
    {
        int nflip = 0, s = 0;
        for (int i = 0; i < 8; ++i)
        {
            if (x[i] >= 0) xval[i] = x[i];
            else
            {
                xval[i] = -x[i];
                ++nflip;
                s |= 1 << i;
            }
        }
        if (!evenSigns) return (byte)s;
        if (nflip % 2 != 0)
        {
            int imin = 0;
            float min = weight[0] * x[0] * x[0];
            for (int i = 1; i < 8; ++i)
            {
                float ax = weight[i] * x[i] * x[i];
                if (ax < min) { min = ax; imin = i; }
            }
            xval[imin] = -xval[imin];
            s ^= 1 << imin;
        }
        return (byte)(s & 127);
    }

    /// <summary>
    /// The first steps for one sub-block whose weights are set: √weight into waux, each group of 8 split into magnitudes
    /// (xval) and sign bits (<see cref="SplitSigns"/>); returns the largest magnitude.
    /// </summary>
    public static float SplitSubBlock(ReadOnlySpan<float> xb, ReadOnlySpan<float> weight, Span<float> xval, Span<float> waux,
        Span<byte> signs, bool evenSigns)
    {
        for (int i = 0; i < xb.Length; ++i) waux[i] = MathF.Sqrt(weight[i]);
        for (int k = 0; k < xb.Length / 8; ++k) signs[k] = SplitSigns(xb.Slice(8 * k, 8), weight.Slice(8 * k, 8), xval.Slice(8 * k, 8), evenSigns);
        return MaxOf(xval);
    }

    /// <summary>
    /// The scale from <see cref="FindScale"/> made positive: a negative one is negated and the sign bits of the sub-block
    /// flipped (the 7 stored bits under <paramref name="evenSigns"/>, all 8 otherwise).
    /// </summary>
    public static float PositiveScale(float scale, Span<byte> signs, bool evenSigns)
    {
        if (scale < 0)
        {
            scale = -scale;
            for (int k = 0; k < signs.Length; ++k) signs[k] = evenSigns ? (byte)(~signs[k] & 127) : (byte)~signs[k];
        }
        return scale;
    }

    /// <summary>ggml's MAX macro: a &gt; b ? a : b (not MathF.Max, which differs on −0 and NaN).</summary>
    public static float Max(float a, float b) => a > b ? a : b;

    /// <summary>The largest of xval, by <see cref="Max"/> from the first.</summary>
    public static float MaxOf(ReadOnlySpan<float> xval)
    {
        float max = xval[0];
        for (int i = 1; i < xval.Length; ++i) max = Max(max, xval[i]);
        return max;
    }

    /// <summary>
    /// The scale search. Tries id = (2·kMaxQ − 1 + s·step)/max for s in [−steps, steps]: rounds xval to levels
    /// l = round(0.5·(id·x − 1)) in [0, kMaxQ), moves each group off the grid to its best neighbour at scale 1/id, and keeps
    /// the fit Σw·x·q / Σw·q² (q = 2l + 1) that beats the best so far. Then refits as <paramref name="refit"/> says.
    /// Returns the scale (which may be negative); L holds levels of grid points.
    /// </summary>
    public static float FindScale(IqGridSearch grid, int kMaxQ, ReadOnlySpan<float> xval, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> waux, Span<sbyte> L, Span<sbyte> Laux, float scale, float max, int steps, float step,
        bool onGridAtStart, Refit refit)
    {
        int n = xval.Length, dims = grid.Dims, groups = n / dims;
        Span<bool> onGrid = stackalloc bool[8], onGridAux = stackalloc bool[8];
        onGrid[..groups].Fill(onGridAtStart);
        float best = 0;
        for (int s = -steps; s <= steps; ++s)
        {
            float id = (2 * kMaxQ - 1 + s * step) / max;
            float thisScale = 1 / id;
            for (int k = 0; k < groups; ++k)
                onGridAux[k] = RoundGroup(grid, kMaxQ, id, thisScale, xval.Slice(dims * k, dims), waux.Slice(dims * k, dims), Laux.Slice(dims * k, dims));
            Fit(weight, xval, Laux, out float sumqx, out float sumq2);
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2)
            {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                Laux[..n].CopyTo(L);
                onGridAux[..groups].CopyTo(onGrid);
            }
        }
        bool anyOff = onGrid[..groups].Contains(false);
        if (scale > 0 && (refit == Refit.All || anyOff))
        {
            float id = 1 / scale;
            for (int k = 0; k < groups; ++k)
            {
                if (refit == Refit.OffGridGroups && onGrid[k]) continue;
                RoundGroup(grid, kMaxQ, id, scale, xval.Slice(dims * k, dims), waux.Slice(dims * k, dims), L.Slice(dims * k, dims));
            }
            Fit(weight, xval, L, out float sumqx, out float sumq2);
            if (sumq2 > 0) scale = sumqx / sumq2;
        }
        return scale;
    }

    /// <summary>Rounds one group to levels at id; a group off the grid moves to its best neighbour at scale. True when it was on the grid.</summary>
    private static bool RoundGroup(IqGridSearch grid, int kMaxQ, float id, float scale, ReadOnlySpan<float> xval, ReadOnlySpan<float> waux, Span<sbyte> L)
    {
        for (int i = 0; i < xval.Length; ++i)
        {
            int l = NearestInt(0.5f * (id * xval[i] - 1));
            L[i] = (sbyte)Math.Max(0, Math.Min(kMaxQ - 1, l));
        }
        if (grid.IndexOf(grid.Pack(L)) >= 0) return true;
        grid.BestNeighbour(xval, waux, scale, L);
        return false;
    }

    /// <summary>Σ w·x·q and Σ w·q² for q = 2l + 1.</summary>
    private static void Fit(ReadOnlySpan<float> weight, ReadOnlySpan<float> xval, ReadOnlySpan<sbyte> L, out float sumqx, out float sumq2)
    {
        sumqx = sumq2 = 0;
        for (int i = 0; i < xval.Length; ++i)
        {
            float w = weight[i];
            float q = 2 * L[i] + 1;
            sumqx += w * xval[i] * q;
            sumq2 += w * q * q;
        }
    }

    /// <summary>The 4-bit block scale l = round(0.5·(id·scale − 1)) in [0, 15] (the formats store scale ≈ d·(2l + 1)).</summary>
    public static int ScaleNibble(float id, float scale) => Math.Max(0, Math.Min(15, NearestInt(0.5f * (id * scale - 1))));

    /// <summary>ggml's best_index_int8: the index of the sorted value nearest to x (ties to the upper one).</summary>
    public static int BestIndex(ReadOnlySpan<sbyte> values, float x)
    {
        int n = values.Length;
        if (x <= values[0]) return 0;
        if (x >= values[n - 1]) return n - 1;
        int ml = 0, mu = n - 1;
        while (mu - ml > 1)
        {
            int mav = (ml + mu) / 2;
            if (x < values[mav]) mu = mav;
            else ml = mav;
        }
        return x - values[mu - 1] < values[mu] - x ? mu - 1 : mu;
    }
}
