// Scalar reference for ggml's Q8_K, the activation format of the K-quant dot products.
// Layout (292 B): f32 d, qs[256] (int8), bsums[16] (int16, the sum of each 16 quants, used for the K-quant mins);
// x = d·q.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static R1Sharp.Kernels.Quants.QuantMath;

namespace R1Sharp.Kernels.Quants;

public static partial class QuantReference
{
    private const int Q8_KBytes = 292;

    public static void DequantizeRowQ8_K(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = Blocks(src.Length, dst.Length, QK_K, Q8_KBytes, "q8_K");
        for (int i = 0; i < nb; i++)
        {
            var b = src.Slice(i * Q8_KBytes, Q8_KBytes);
            var q = Q8KQuants(b);
            var y = dst.Slice(i * QK_K, QK_K);
            float d = Q8KScale(b);
            for (int j = 0; j < QK_K; ++j) y[j] = d * q[j];
        }
    }

    /// <summary>
    /// quantize_row_q8_K_ref. For an all-zero block ggml leaves bsums unwritten; here they are written as zero.
    /// </summary>
    public static void QuantizeRowQ8_KReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = Blocks(dst.Length, src.Length, QK_K, Q8_KBytes, "q8_K");
        for (int i = 0; i < nb; i++)
        {
            var x = src.Slice(i * QK_K, QK_K);
            var b = dst.Slice(i * Q8_KBytes, Q8_KBytes);
            var qs = MemoryMarshal.Cast<byte, sbyte>(b.Slice(4, QK_K));

            float max = 0, amax = 0;
            for (int j = 0; j < QK_K; ++j)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            if (amax == 0)
            {
                b.Clear();
                continue;
            }
            // -127 rather than -128 so that no quant is -128 (ggml changed this for the IQ2 SIMD paths)
            float iscale = -127f / max;
            for (int j = 0; j < QK_K; ++j) qs[j] = (sbyte)Math.Min(127, NearestInt(iscale * x[j]));
            for (int j = 0; j < QK_K / 16; ++j)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ++ii) sum += qs[j * 16 + ii];
                BinaryPrimitives.WriteInt16LittleEndian(b[(260 + 2 * j)..], (short)sum);
            }
            BinaryPrimitives.WriteSingleLittleEndian(b, 1 / iscale);
        }
    }

    private static float Q8KScale(ReadOnlySpan<byte> block) => BinaryPrimitives.ReadSingleLittleEndian(block);

    private static ReadOnlySpan<sbyte> Q8KQuants(ReadOnlySpan<byte> block) =>
        MemoryMarshal.Cast<byte, sbyte>(block.Slice(4, QK_K));

    private static int Q8KBlockSum(ReadOnlySpan<byte> block, int j) =>
        BinaryPrimitives.ReadInt16LittleEndian(block[(260 + 2 * j)..]);
}
