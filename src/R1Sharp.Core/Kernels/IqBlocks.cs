// The IQ, TQ and MXFP4 block types' scalar reference functions for the kernel table (QuantBlockKernels.Create).
// Their row quantizer is what ggml_quantize_chunk writes without an importance matrix; IQ2_XXS, IQ2_XS and IQ1_S have
// none (ggml requires one), so quantizing a row of them here throws.
using R1Sharp.Kernels.Quants;
using R1Sharp.Tensors;

namespace R1Sharp.Kernels;

internal readonly struct IQ2_XXSBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ2_XXS;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ2_XXS(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ2_XXS(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ2_XXSQ8_KReference(n, w, x);
}

internal readonly struct IQ2_XSBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ2_XS;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ2_XS(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ2_XS(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ2_XSQ8_KReference(n, w, x);
}

internal readonly struct IQ2_SBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ2_S;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ2_S(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ2_S(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ2_SQ8_KReference(n, w, x);
}

internal readonly struct IQ3_XXSBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ3_XXS;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ3_XXS(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ3_XXS(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ3_XXSQ8_KReference(n, w, x);
}

internal readonly struct IQ3_SBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ3_S;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ3_S(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ3_S(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ3_SQ8_KReference(n, w, x);
}

internal readonly struct IQ1_SBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ1_S;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ1_S(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ1_S(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ1_SQ8_KReference(n, w, x);
}

internal readonly struct IQ1_MBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ1_M;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ1_M(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ1_M(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ1_MQ8_KReference(n, w, x);
}

internal readonly struct IQ4_NLBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ4_NL;
    public static GgmlType VecDotType => GgmlType.Q8_0;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ4_NL(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ4_NL(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ4_NLQ8_0Reference(n, w, x);
}

internal readonly struct IQ4_XSBlock : IQuantBlock
{
    public static GgmlType Type => GgmlType.IQ4_XS;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowIQ4_XS(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeIQ4_XS(src, dst, default);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotIQ4_XSQ8_KReference(n, w, x);
}

internal readonly struct TQ1_0Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.TQ1_0;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowTQ1_0(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowTQ1_0Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotTQ1_0Q8_KReference(n, w, x);
}

internal readonly struct TQ2_0Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.TQ2_0;
    public static GgmlType VecDotType => GgmlType.Q8_K;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowTQ2_0(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowTQ2_0Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotTQ2_0Q8_KReference(n, w, x);
}

internal readonly struct MXFP4Block : IQuantBlock
{
    public static GgmlType Type => GgmlType.MXFP4;
    public static GgmlType VecDotType => GgmlType.Q8_0;
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> dst) => QuantReference.DequantizeRowMXFP4(src, dst);
    public static void Quantize(ReadOnlySpan<float> src, Span<byte> dst) => QuantReference.QuantizeRowMXFP4Reference(src, dst);
    public static float VecDot(int n, ReadOnlySpan<byte> w, ReadOnlySpan<byte> x) => QuantReference.VecDotMXFP4Q8_0Reference(n, w, x);
}
