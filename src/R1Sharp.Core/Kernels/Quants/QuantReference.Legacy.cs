// Scalar reference for ggml's 32-value block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q8_1 (the activation
// format of Q4_1/Q5_1): dequantize_row_*, quantize_row_*_ref and the generic ggml_vec_dot_* of ggml-quants.c
// and ggml-cpu/quants.c. SIMD kernels must reproduce these bit for bit or within a named tolerance.
//
// Layouts (little endian, f16 = IEEE half):
//   Q4_0 (18 B): f16 d, 16 B nibbles; value j (0..15) in the low nibble of byte j, value j+16 in its high nibble; x = (q − 8)·d
//   Q4_1 (20 B): f16 d, f16 m, 16 B nibbles as Q4_0; x = q·d + m
//   Q5_0 (22 B): f16 d, u32 qh (bit j = 5th bit of value j), 16 B nibbles as Q4_0; x = (q − 16)·d
//   Q5_1 (24 B): f16 d, f16 m, u32 qh, 16 B nibbles; x = q·d + m
//   Q8_0 (34 B): f16 d, 32 × i8; x = q·d
//   Q8_1 (36 B): f16 d, f16 s (= d·Σq), 32 × i8; x = q·d
using System.Buffers.Binary;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int QK = 32;
    private const int Q4_0Bytes = 18, Q4_1Bytes = 20, Q5_0Bytes = 22, Q5_1Bytes = 24, Q8_0Bytes = 34, Q8_1Bytes = 36;

    // ---------------------------------------------------------------- Q4_0

    public static void DequantizeRowQ4_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Q4_0Bytes, "q4_0");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q4_0Bytes, Q4_0Bytes);
            var y = dst.Slice(i * QK, QK);
            float d = ReadHalf(b, 0);
            for (int j = 0; j < QK / 2; ++j)
            {
                int x0 = (b[2 + j] & 0x0F) - 8;
                int x1 = (b[2 + j] >> 4) - 8;
                y[j] = x0 * d;
                y[j + QK / 2] = x1 * d;
            }
        }
    }

    public static void QuantizeRowQ4_0Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Q4_0Bytes, "q4_0");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Q4_0Bytes, Q4_0Bytes);
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++)
            {
                if (amax < MathF.Abs(x[j])) { amax = MathF.Abs(x[j]); max = x[j]; }
            }
            float d = max / -8;
            float id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(b, 0, d);
            for (int j = 0; j < QK / 2; ++j)
            {
                float x0 = x[j] * id;
                float x1 = x[QK / 2 + j] * id;
                int xi0 = Math.Min(15, (int)(x0 + 8.5f));
                int xi1 = Math.Min(15, (int)(x1 + 8.5f));
                b[2 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    /// <summary>Q4_0 weights · Q8_0 activations (ggml_vec_dot_q4_0_q8_0_generic).</summary>
    public static float VecDotQ4_0Q8_0Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Q4_0Bytes, Q8_0Bytes, "vec_dot q4_0·q8_0");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Q4_0Bytes, Q4_0Bytes);
            var xb = x.Slice(ib * Q8_0Bytes, Q8_0Bytes);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int v0 = (wb[2 + j] & 0x0F) - 8;
                int v1 = (wb[2 + j] >> 4) - 8;
                sumi0 += v0 * (sbyte)xb[2 + j];
                sumi1 += v1 * (sbyte)xb[2 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += sumi * ReadHalf(wb, 0) * ReadHalf(xb, 0);
        }
        return sumf;
    }

    // ---------------------------------------------------------------- Q4_1

    public static void DequantizeRowQ4_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Q4_1Bytes, "q4_1");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q4_1Bytes, Q4_1Bytes);
            var y = dst.Slice(i * QK, QK);
            float d = ReadHalf(b, 0);
            float m = ReadHalf(b, 2);
            for (int j = 0; j < QK / 2; ++j)
            {
                int x0 = b[4 + j] & 0x0F;
                int x1 = b[4 + j] >> 4;
                y[j] = x0 * d + m;
                y[j + QK / 2] = x1 * d + m;
            }
        }
    }

    public static void QuantizeRowQ4_1Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Q4_1Bytes, "q4_1");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Q4_1Bytes, Q4_1Bytes);
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < QK; j++)
            {
                if (x[j] < min) min = x[j];
                if (x[j] > max) max = x[j];
            }
            float d = (max - min) / ((1 << 4) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(b, 0, d);
            WriteHalf(b, 2, min);
            for (int j = 0; j < QK / 2; ++j)
            {
                float x0 = (x[j] - min) * id;
                float x1 = (x[QK / 2 + j] - min) * id;
                int xi0 = Math.Min(15, (int)(x0 + 0.5f));
                int xi1 = Math.Min(15, (int)(x1 + 0.5f));
                b[4 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    /// <summary>Q4_1 weights · Q8_1 activations (ggml_vec_dot_q4_1_q8_1_generic).</summary>
    public static float VecDotQ4_1Q8_1Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Q4_1Bytes, Q8_1Bytes, "vec_dot q4_1·q8_1");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Q4_1Bytes, Q4_1Bytes);
            var xb = x.Slice(ib * Q8_1Bytes, Q8_1Bytes);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int v0 = wb[4 + j] & 0x0F;
                int v1 = wb[4 + j] >> 4;
                sumi0 += v0 * (sbyte)xb[4 + j];
                sumi1 += v1 * (sbyte)xb[4 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += ReadHalf(wb, 0) * ReadHalf(xb, 0) * sumi + ReadHalf(wb, 2) * ReadHalf(xb, 2);
        }
        return sumf;
    }

    // ---------------------------------------------------------------- Q5_0

    public static void DequantizeRowQ5_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Q5_0Bytes, "q5_0");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q5_0Bytes, Q5_0Bytes);
            var y = dst.Slice(i * QK, QK);
            float d = ReadHalf(b, 0);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b[2..]);
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)((qh >> j) << 4) & 0x10;
                int xh1 = (int)(qh >> (j + 12)) & 0x10;
                int x0 = ((b[6 + j] & 0x0F) | xh0) - 16;
                int x1 = ((b[6 + j] >> 4) | xh1) - 16;
                y[j] = x0 * d;
                y[j + QK / 2] = x1 * d;
            }
        }
    }

    public static void QuantizeRowQ5_0Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Q5_0Bytes, "q5_0");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Q5_0Bytes, Q5_0Bytes);
            float amax = 0, max = 0;
            for (int j = 0; j < QK; j++)
            {
                if (amax < MathF.Abs(x[j])) { amax = MathF.Abs(x[j]); max = x[j]; }
            }
            float d = max / -16;
            float id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(b, 0, d);
            uint qh = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                float x0 = x[j] * id;
                float x1 = x[QK / 2 + j] * id;
                uint xi0 = (uint)Math.Min(31, (int)(x0 + 16.5f));
                uint xi1 = (uint)Math.Min(31, (int)(x1 + 16.5f));
                b[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(b[2..], qh);
        }
    }

    /// <summary>Q5_0 weights · Q8_0 activations (ggml_vec_dot_q5_0_q8_0_generic).</summary>
    public static float VecDotQ5_0Q8_0Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Q5_0Bytes, Q8_0Bytes, "vec_dot q5_0·q8_0");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Q5_0Bytes, Q5_0Bytes);
            var xb = x.Slice(ib * Q8_0Bytes, Q8_0Bytes);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(wb[2..]);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)((qh >> j) & 1) << 4;
                int xh1 = (int)((qh >> (j + 16)) & 1) << 4;
                int x0 = ((wb[6 + j] & 0x0F) | xh0) - 16;
                int x1 = ((wb[6 + j] >> 4) | xh1) - 16;
                sumi0 += x0 * (sbyte)xb[2 + j];
                sumi1 += x1 * (sbyte)xb[2 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += ReadHalf(wb, 0) * ReadHalf(xb, 0) * sumi;
        }
        return sumf;
    }

    // ---------------------------------------------------------------- Q5_1

    public static void DequantizeRowQ5_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Q5_1Bytes, "q5_1");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q5_1Bytes, Q5_1Bytes);
            var y = dst.Slice(i * QK, QK);
            float d = ReadHalf(b, 0);
            float m = ReadHalf(b, 2);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b[4..]);
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)((qh >> j) << 4) & 0x10;
                int xh1 = (int)(qh >> (j + 12)) & 0x10;
                int x0 = (b[8 + j] & 0x0F) | xh0;
                int x1 = (b[8 + j] >> 4) | xh1;
                y[j] = x0 * d + m;
                y[j + QK / 2] = x1 * d + m;
            }
        }
    }

    public static void QuantizeRowQ5_1Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Q5_1Bytes, "q5_1");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Q5_1Bytes, Q5_1Bytes);
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < QK; j++)
            {
                if (x[j] < min) min = x[j];
                if (x[j] > max) max = x[j];
            }
            float d = (max - min) / ((1 << 5) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(b, 0, d);
            WriteHalf(b, 2, min);
            uint qh = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                float x0 = (x[j] - min) * id;
                float x1 = (x[QK / 2 + j] - min) * id;
                // ggml casts straight to uint8_t here, without the MIN(31, ·) of the other formats.
                uint xi0 = (byte)(int)(x0 + 0.5f);
                uint xi1 = (byte)(int)(x1 + 0.5f);
                b[8 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + QK / 2);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(b[4..], qh);
        }
    }

    /// <summary>Q5_1 weights · Q8_1 activations (ggml_vec_dot_q5_1_q8_1_generic).</summary>
    public static float VecDotQ5_1Q8_1Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Q5_1Bytes, Q8_1Bytes, "vec_dot q5_1·q8_1");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Q5_1Bytes, Q5_1Bytes);
            var xb = x.Slice(ib * Q8_1Bytes, Q8_1Bytes);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(wb[4..]);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                int xh0 = (int)((qh >> j) << 4) & 0x10;
                int xh1 = (int)(qh >> (j + 12)) & 0x10;
                int x0 = (wb[8 + j] & 0x0F) | xh0;
                int x1 = (wb[8 + j] >> 4) | xh1;
                sumi0 += x0 * (sbyte)xb[4 + j];
                sumi1 += x1 * (sbyte)xb[4 + j + QK / 2];
            }
            int sumi = sumi0 + sumi1;
            sumf += ReadHalf(wb, 0) * ReadHalf(xb, 0) * sumi + ReadHalf(wb, 2) * ReadHalf(xb, 2);
        }
        return sumf;
    }

    // ---------------------------------------------------------------- Q8_0

    public static void DequantizeRowQ8_0(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Q8_0Bytes, "q8_0");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q8_0Bytes, Q8_0Bytes);
            var y = dst.Slice(i * QK, QK);
            float d = ReadHalf(b, 0);
            for (int j = 0; j < QK; ++j) y[j] = (sbyte)b[2 + j] * d;
        }
    }

    public static void QuantizeRowQ8_0Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Q8_0Bytes, "q8_0");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Q8_0Bytes, Q8_0Bytes);
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / ((1 << 7) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(b, 0, d);
            for (int j = 0; j < QK; ++j)
                b[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>Q8_0 weights · Q8_0 activations (ggml_vec_dot_q8_0_q8_0_generic).</summary>
    public static float VecDotQ8_0Q8_0Reference(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x)
    {
        int nb = DotBlocks(n, w.Length, x.Length, QK, Q8_0Bytes, Q8_0Bytes, "vec_dot q8_0·q8_0");
        float sumf = 0;
        for (int ib = 0; ib < nb; ++ib)
        {
            var wb = w.Slice(ib * Q8_0Bytes, Q8_0Bytes);
            var xb = x.Slice(ib * Q8_0Bytes, Q8_0Bytes);
            int sumi = 0;
            for (int j = 0; j < QK; j++) sumi += (sbyte)wb[2 + j] * (sbyte)xb[2 + j];
            sumf += sumi * (ReadHalf(wb, 0) * ReadHalf(xb, 0));
        }
        return sumf;
    }

    // ---------------------------------------------------------------- Q8_1

    /// <summary>Q8_1 to floats as q·d; ggml has no dequantize_row_q8_1 (the format only feeds dot products).</summary>
    public static void DequantizeRowQ8_1(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK, Q8_1Bytes, "q8_1");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q8_1Bytes, Q8_1Bytes);
            var y = dst.Slice(i * QK, QK);
            float d = ReadHalf(b, 0);
            for (int j = 0; j < QK; ++j) y[j] = (sbyte)b[4 + j] * d;
        }
    }

    public static void QuantizeRowQ8_1Reference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK, Q8_1Bytes, "q8_1");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK, QK);
            var b = dst.Slice(i * Q8_1Bytes, Q8_1Bytes);
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = MathF.Max(amax, MathF.Abs(x[j]));
            float d = amax / ((1 << 7) - 1);
            float id = d != 0 ? 1.0f / d : 0.0f;
            WriteHalf(b, 0, d);
            int sum = 0;
            for (int j = 0; j < QK / 2; ++j)
            {
                sbyte q0 = (sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
                sbyte q1 = (sbyte)MathF.Round(x[QK / 2 + j] * id, MidpointRounding.AwayFromZero);
                b[4 + j] = (byte)q0;
                b[4 + QK / 2 + j] = (byte)q1;
                sum += q0 + q1;
            }
            WriteHalf(b, 2, sum * d);
        }
    }
}
