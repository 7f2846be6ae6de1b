// Helpers shared by the scalar reference quantizers: ggml's rounding, f16 fields, length checks,
// and the scale searches of ggml-quants.c (make_qx_quants, make_q3_quants, make_qkx2_quants, make_qkx3_quants,
// make_qp_quants), with the importance weights of an imatrix where ggml's quantize_* pass them.
// The float arithmetic follows ggml's order of operations so quantized bytes match llama.cpp's.
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace R1Sharp.Kernels.Quants;

internal static class QuantMath
{
    /// <summary>Smallest group maximum treated as non-zero (ggml's GROUP_MAX_EPS).</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>ggml's nearest_int: round half to even via the 1.5·2^23 trick; valid for |x| ≤ 2^22.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float x)
    {
        float v = x + 12582912f;
        int i = BitConverter.SingleToInt32Bits(v);
        return (i & 0x007fffff) - 0x00400000;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ReadHalf(ReadOnlySpan<byte> b, int offset) =>
        (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(b[offset..]));

    /// <summary>float → f16 bits, round to nearest even (what GGML_FP32_TO_FP16 does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void WriteHalf(Span<byte> b, int offset, float v) =>
        BinaryPrimitives.WriteUInt16LittleEndian(b[offset..], BitConverter.HalfToUInt16Bits((Half)v));

    /// <summary>Checks a (quantized, float) row pair and returns the number of blocks.</summary>
    public static int Blocks(int quantLength, int floatLength, int blockSize, int blockBytes, string type)
    {
        if (floatLength % blockSize != 0)
            throw new ArgumentException($"{type}: row length {floatLength} is not a multiple of the block size {blockSize}");
        int nb = floatLength / blockSize;
        if (quantLength != nb * blockBytes)
            throw new ArgumentException($"{type}: {floatLength} values take {nb * blockBytes} bytes, got {quantLength}");
        return nb;
    }

    /// <summary>Checks a dot product's weight and activation rows and returns the number of blocks.</summary>
    public static int DotBlocks(int n, int wLength, int xLength, int blockSize, int wBlockBytes, int xBlockBytes, string name)
    {
        if (n < 0 || n % blockSize != 0)
            throw new ArgumentException($"{name}: n = {n} is not a multiple of the block size {blockSize}");
        int nb = n / blockSize;
        if (wLength != nb * wBlockBytes)
            throw new ArgumentException($"{name}: weight row of {n} values takes {nb * wBlockBytes} bytes, got {wLength}");
        if (xLength != nb * xBlockBytes)
            throw new ArgumentException($"{name}: activation row of {n} values takes {nb * xBlockBytes} bytes, got {xLength}");
        return nb;
    }

    /// <summary>
    /// The first pass of ggml's symmetric quantizers: levels l = round(−nmax / max · x) clamped to [−nmax, nmax), with
    /// max the value of largest magnitude, stored as l + offset, and their x²-weighted sums Σ w·x·l and Σ w·l². False
    /// (and L zero) when every |x| is below the group epsilon.
    /// </summary>
    private static bool FirstFit(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> qw, Span<sbyte> L, int offset, out float max, out float sumlx, out float suml2)
    {
        float amax = 0;
        max = sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L[..n].Clear();
            return false;
        }
        float iscale = -nmax / max;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + offset);
            float w = qw.IsEmpty ? x[i] * x[i] : qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        return true;
    }

    /// <summary>
    /// ggml's make_qx_quants with rmse_type 1: symmetric quantization of x to L in [0, 2·nmax) around nmax, trying 19
    /// scales near −nmax/max and keeping the best weighted least-squares fit, weights qw (or x² without). Returns the scale.
    /// </summary>
    public static float MakeQxQuants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L, ReadOnlySpan<float> qw = default)
    {
        if (!FirstFit(n, nmax, x, qw, L, nmax, out float max, out float sumlx, out float suml2)) return 0f;
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; ++step)
        {
            if (step == 0) continue;
            float iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = qw.IsEmpty ? x[i] * x[i] : qw[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; ++i)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>
    /// ggml's make_q3_quants with do_rmse (as Q3_K uses it): symmetric quantization to L in [0, 2·nmax), then up to
    /// 5 passes that move single levels when that improves the x²-weighted fit. Returns the scale.
    /// </summary>
    public static float MakeQ3Quants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        if (!FirstFit(n, nmax, x, default, L, 0, out _, out float sumlx, out float suml2)) return 0f;
        for (int itry = 0; itry < 5; ++itry)
        {
            int nChanged = 0;
            for (int i = 0; i < n; ++i)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = NearestInt(x[i] * sl2 / slx);
                    newL = Math.Max(-nmax, Math.Min(nmax - 1, newL));
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (sbyte)newL; sumlx = slx; suml2 = sl2;
                            ++nChanged;
                        }
                    }
                }
            }
            if (nChanged == 0) break;
        }
        for (int i = 0; i < n; ++i) L[i] += (sbyte)nmax;
        return suml2 > 0f ? sumlx / suml2 : 0f;
    }

    /// <summary>
    /// ggml's make_qkx2_quants: asymmetric quantization x ≈ scale·L − theMin with L in [0, nmax] and min ≤ 0;
    /// tries nstep+1 (≥ 1) scales around nmax/(max−min) and keeps the weighted least-squares fit with the smallest
    /// weighted error (absolute when useMad, else squared). Returns the scale; theMin gets −min.
    /// </summary>
    public static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad)
        => MakeQkxQuants(n, nmax, x, weights, L, out theMin, Laux, rmin, rdelta, nstep, useMad, firstFitWithoutSteps: false);

    /// <summary>
    /// ggml's make_qkx3_quants: as <see cref="MakeQkx2Quants"/> (x ≈ scale·L − theMin, L in [0, nmax], min ≤ 0) with
    /// importance weights, the first fit kept unless one of the nstep + 1 tries has a smaller weighted error, and no fit
    /// when max ≤ min. Returns the scale; theMin gets −min.
    /// </summary>
    public static float MakeQkx3Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad)
        => MakeQkxQuants(n, nmax, x, weights, L, out theMin, Laux, rmin, rdelta, nstep, useMad, firstFitWithoutSteps: true);

    /// <summary>
    /// make_qkx2_quants and make_qkx3_quants: the first fit at nmax/(max−min), then nstep + 1 tries kept when their weighted
    /// error is smaller; with <paramref name="firstFitWithoutSteps"/> (qkx3) nstep &lt; 1 keeps the first fit. No fit when
    /// max ≤ min, which can only mean max = min (both start at x[0]; min only falls, max only rises).
    /// </summary>
    private static float MakeQkxQuants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> Laux, float rmin, float rdelta, int nstep, bool useMad, bool firstFitWithoutSteps)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; ++i)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max <= min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1 && firstFitWithoutSteps)
        {
            theMin = -min;
            return scale;
        }
        for (int step = 0; step <= nstep; ++step)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = Math.Max(0, Math.Min(nmax, NearestInt(iscale * (x[i] - min))));
                Laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; ++i)
                {
                    float diff = thisScale * Laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    Laux[..n].CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>ggml's make_qp_quants: non-negative levels in [0, nmax] of x ≥ 0 with importance weights; returns the scale.</summary>
    public static float MakeQpQuants(int n, int nmax, ReadOnlySpan<float> x, Span<byte> L, ReadOnlySpan<float> qw)
    {
        float max = 0;
        for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i]; // ggml's MAX
        if (max < GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; ++i) L[i] = (byte)NearestInt(iscale * x[i]);
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; ++i)
        {
            float diff = x[i] - scale * L[i];
            float w = qw[i];
            bestMse += w * diff * diff;
        }
        for (int s = -4; s <= 4; ++s)
        {
            if (s == 0) continue;
            float iscaleIs = (0.1f * s + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < n; ++i)
            {
                int l = Math.Min(nmax, NearestInt(iscaleIs * x[i]));
                float diff = x[i] - scaleIs * l;
                float w = qw[i];
                mse += w * diff * diff;
            }
            if (mse < bestMse)
            {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i)
        {
            int l = Math.Min(nmax, NearestInt(iscale * x[i]));
            L[i] = (byte)l;
            float w = qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; ++itry)
        {
            int nChanged = 0;
            for (int i = 0; i < n; ++i)
            {
                float w = qw[i];
                float slx = sumlx - w * x[i] * L[i];
                float sl2 = suml2 - w * L[i] * L[i];
                if (slx > 0 && sl2 > 0)
                {
                    int newL = Math.Min(nmax, NearestInt(x[i] * sl2 / slx));
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (byte)newL;
                            sumlx = slx;
                            suml2 = sl2;
                            ++nChanged;
                        }
                    }
                }
            }
            if (nChanged == 0) break;
        }
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    /// <summary>
    /// The j-th (0..7) 6-bit scale and min of a Q4_K/Q5_K block from its 12 packed bytes: j &lt; 4 in the low 6 bits
    /// of bytes j and j+4; j ≥ 4 as a nibble of byte j+4 plus the top 2 bits of bytes j−4 and j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GetScaleMinK4(int j, ReadOnlySpan<byte> q, out byte d, out byte m)
    {
        if (j < 4)
        {
            d = (byte)(q[j] & 63);
            m = (byte)(q[j + 4] & 63);
        }
        else
        {
            d = (byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
            m = (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
        }
    }

    /// <summary>The j-th (0..15) 6-bit scale of a Q3_K block, unsigned (0..63; subtract 32 for the signed value).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Q3KScale(int j, ReadOnlySpan<byte> s)
    {
        int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
        int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        return lo | (hi << 4);
    }
}
