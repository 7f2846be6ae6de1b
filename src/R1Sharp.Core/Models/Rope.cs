// Rotary position embedding, computed as ggml does: θ for pair i is pos·base^(-2i/d), built by repeated float
// multiplication, optionally divided by per-pair frequency factors (Llama 3 rope_freqs) or blended by YaRN between
// interpolated (θ/s) and extrapolated (θ) angles along a ramp over the pair index.
using System.Runtime.Intrinsics;

namespace R1Sharp.Models;

public sealed unsafe class Rope
{
    private readonly int _dims;
    private readonly float _thetaScale;
    private readonly RopeStyle _style;
    private readonly float* _freqFactors;
    // YaRN
    private readonly float _freqScale = 1f, _rampLow, _rampHigh, _mscale = 1f;
    private readonly bool _yarn;

    /// <param name="dims">Rotated dimensions per head (even).</param>
    /// <param name="freqFactors">dims/2 divisors of θ (Llama 3 rope_freqs.weight), or null.</param>
    /// <param name="yarnScaleInSoftmax">deepseek2: YaRN's magnitude correction goes into the softmax scale, not into cos/sin.</param>
    public Rope(int dims, float theta, RopeStyle style, float* freqFactors = null, YarnConfig? yarn = null, bool yarnScaleInSoftmax = false)
    {
        _dims = dims;
        _thetaScale = MathF.Pow(theta, -2.0f / dims);
        _style = style;
        _freqFactors = freqFactors;
        if (yarn is { Factor: > 1 })
        {
            _yarn = true;
            _freqScale = 1.0f / yarn.Factor;
            // the pair indices that rotate betaFast and betaSlow times over the original context bound the ramp
            _rampLow = MathF.Max(0, MathF.Floor(CorrectionDim(dims, yarn.OriginalContext, yarn.BetaFast, theta)));
            _rampHigh = MathF.Min(dims - 1, MathF.Ceiling(CorrectionDim(dims, yarn.OriginalContext, yarn.BetaSlow, theta)));
            // ggml scales cos/sin by 1 + 0.1·ln(s) under YaRN; deepseek2 cancels it and puts mscale² into the softmax
            // scale instead, so its product below is 1 up to rounding (kept to round as llama.cpp does)
            float inner = 1.0f + 0.1f * MathF.Log(1.0f / _freqScale);
            _mscale = yarnScaleInSoftmax ? 1.0f / inner * inner : inner;
        }
    }

    public int Dims => _dims;

    private static float CorrectionDim(int dims, int originalContext, float rotations, float theta) =>
        dims * MathF.Log(originalContext / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(theta));

    /// <summary>Fills <paramref name="cs"/> (length dims) with the pairs' cos in its first half and their sin in the second, for position <paramref name="pos"/>.</summary>
    public void Angles(int pos, Span<float> cs)
    {
        int half = _dims / 2;
        float theta = pos;
        for (int i = 0; i < half; i++)
        {
            float t = _freqFactors != null ? theta / _freqFactors[i] : theta;
            float angle = t;
            if (_yarn)
            {
                float interp = _freqScale * t;
                float y = (i - _rampLow) / MathF.Max(0.001f, _rampHigh - _rampLow);
                float mix = 1 - MathF.Min(1, MathF.Max(0, y));
                angle = interp * (1 - mix) + t * mix;
            }
            cs[i] = MathF.Cos(angle) * _mscale;
            cs[half + i] = MathF.Sin(angle) * _mscale;
            theta *= _thetaScale;
        }
    }

    /// <summary>
    /// Rotates <paramref name="heads"/> heads laid out every <paramref name="stride"/> values, each starting at
    /// <paramref name="offset"/>, by the angles <see cref="Angles"/> wrote. NeoX style rotates the head's two halves
    /// against each other, a vector at a time; normal style rotates adjacent pairs.
    /// </summary>
    public void Apply(Span<float> x, int heads, int stride, int offset, ReadOnlySpan<float> cs)
    {
        int half = _dims / 2;
        if (heads > 0 && ((long)(heads - 1) * stride + offset + _dims > x.Length || cs.Length < _dims))
            throw new ArgumentException($"RoPE over {heads} heads every {stride} from {offset} needs {(long)(heads - 1) * stride + offset + _dims} values and {_dims} angles; got {x.Length} and {cs.Length}");
        fixed (float* px = x)
        fixed (float* pc = cs)
        {
            float* cos = pc, sin = pc + half;
            for (int h = 0; h < heads; h++)
            {
                float* v = px + h * stride + offset;
                if (_style == RopeStyle.Normal)
                {
                    for (int i = 0; i < half; i++)
                    {
                        float x0 = v[2 * i], x1 = v[2 * i + 1];
                        v[2 * i] = x0 * cos[i] - x1 * sin[i];
                        v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
                    }
                    continue;
                }
                float* w = v + half;
                int j = 0;
                for (; Vector256.IsHardwareAccelerated && j + Vector256<float>.Count <= half; j += Vector256<float>.Count)
                {
                    Vector256<float> x0 = Vector256.Load(v + j), x1 = Vector256.Load(w + j);
                    Vector256<float> c = Vector256.Load(cos + j), s = Vector256.Load(sin + j);
                    (x0 * c - x1 * s).Store(v + j);
                    (x0 * s + x1 * c).Store(w + j);
                }
                for (; j < half; j++)
                {
                    float x0 = v[j], x1 = w[j];
                    v[j] = x0 * cos[j] - x1 * sin[j];
                    w[j] = x0 * sin[j] + x1 * cos[j];
                }
            }
        }
    }
}
