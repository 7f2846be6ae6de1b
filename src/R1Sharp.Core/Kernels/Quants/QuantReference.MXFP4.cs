// Scalar reference for ggml's MXFP4 (OCP microscaling FP4): 32 values per 17-byte block, an E8M0 exponent byte e
// and 16 bytes of E2M1 nibbles laid out as Q4_0's (value j < 16 the low nibble of byte j, 16 + j its high nibble);
// x = 2^(e − 128)·kvalues_mxfp4[q] (the table holds the E2M1 values doubled, so the scale is halved).
// dequantize_row_mxfp4, quantize_row_mxfp4_ref (what quantize_mxfp4 writes) and ggml_vec_dot_mxfp4_q8_0_generic.
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Mxfp4Bytes = 17;

    /// <summary>ggml_e8m0_to_fp32_half: 2^(e − 128), as a subnormal for e &lt; 2.</summary>
    internal static float E8M0ToFloatHalf(byte e) =>
        BitConverter.Int32BitsToSingle(e < 2 ? 0x00200000 << e : (e - 1) << 23);

    public static void DequantizeRowMXFP4(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Mxfp4Bytes, "mxfp4");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Mxfp4Bytes, Mxfp4Bytes);
            float d = E8M0ToFloatHalf(b[0]);
            var y = dst.Slice(i * QK, QK);
            for (int j = 0; j < 16; ++j)
            {
                y[j] = IqGrids.KValuesMxfp4[b[1 + j] & 0xF] * d;
                y[j + 16] = IqGrids.KValuesMxfp4[b[1 + j] >> 4] * d;
            }
        }
    }

    public static void QuantizeRowMXFP4Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Mxfp4Bytes, "mxfp4");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Mxfp4Bytes, Mxfp4Bytes);
            float amax = 0;
            for (int j = 0; j < QK; j++) if (amax < MathF.Abs(x[j])) amax = MathF.Abs(x[j]);
            // (uint8_t) of a float: x86 truncates to int32 and keeps the low byte
            byte e = amax > 0 ? (byte)(int)(MathF.Floor(MathF.Log2(amax)) - 2 + 127) : (byte)0;
            float d = E8M0ToFloatHalf(e);
            b[0] = e;
            for (int j = 0; j < 16; ++j)
                b[1 + j] = (byte)(NearestMxfp4(x[j], d) | (NearestMxfp4(x[16 + j], d) << 4));
        }
    }

    /// <summary>MXFP4 weights · Q8_0 activations (ggml_vec_dot_mxfp4_q8_0_generic).</summary>
    public static float VecDotMXFP4Q8_0Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Mxfp4Bytes, Q8_0Bytes, "vec_dot mxfp4·q8_0");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Mxfp4Bytes, Mxfp4Bytes);
            var xb = x.Slice(ib * Q8_0Bytes, Q8_0Bytes);
            float d = ReadHalf(xb, 0) * E8M0ToFloatHalf(wb[0]);
            sumf += d * NonLinearDot(wb.Slice(1, 16), IqGrids.KValuesMxfp4, xb.Slice(2, 32));
        }
        return sumf;
    }

    /// <summary>ggml's best_index_mxfp4: the first of the 16 values v with the smallest |v·e − x|.</summary>
    private static int NearestMxfp4(float x, float e)
    {
        int best = 0;
        float bestErr = MathF.Abs(IqGrids.KValuesMxfp4[0] * e - x);
        for (int i = 1; i < 16; i++)
        {
            float err = MathF.Abs(IqGrids.KValuesMxfp4[i] * e - x);
            if (err < bestErr)
            {
                best = i;
                bestErr = err;
            }
        }
        return best;
    }
}
