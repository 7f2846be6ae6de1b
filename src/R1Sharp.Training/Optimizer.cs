// AdamW with decoupled weight decay (not on norms, biases or embeddings), global-norm gradient clipping, and the
// learning-rate schedule of most LLM recipes: linear warmup, then cosine decay to a floor.
namespace R1Sharp.Training;

public sealed class AdamW
{
    private readonly TrainModel _m;
    private readonly float[] _mom, _vel;
    private readonly bool[] _decay;
    private int _step;

    public AdamW(TrainModel model, float beta1 = 0.9f, float beta2 = 0.95f, float eps = 1e-8f, float weightDecay = 0.1f)
    {
        _m = model;
        _mom = new float[model.Count];
        _vel = new float[model.Count];
        _decay = model.Tensors.Select(p => p.IsMatrix && p.Name != "token_embd.weight").ToArray();
        Beta1 = beta1; Beta2 = beta2; Eps = eps; WeightDecay = weightDecay;
    }

    public float Beta1 { get; }
    public float Beta2 { get; }
    public float Eps { get; }
    public float WeightDecay { get; }

    /// <summary>Scales gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before.</summary>
    public static float ClipGradients(TrainModel m, float maxNorm)
    {
        double sq = 0;
        foreach (float g in m.Grads) sq += (double)g * g;
        float norm = (float)Math.Sqrt(sq);
        if (maxNorm > 0 && norm > maxNorm)
            System.Numerics.Tensors.TensorPrimitives.Multiply(m.Grads, maxNorm / norm, m.Grads);
        return norm;
    }

    /// <summary>The updates taken so far (the bias corrections' exponent).</summary>
    public int StepCount => _step;

    /// <summary>Writes the moments and the step count (a training checkpoint's optimizer state).</summary>
    public void Save(BinaryWriter w)
    {
        w.Write(_step);
        TrainingCheckpoint.WriteFloats(w, _mom);
        TrainingCheckpoint.WriteFloats(w, _vel);
    }

    /// <summary>Restores what <see cref="Save"/> wrote; <paramref name="path"/> names the file in errors.</summary>
    public void Load(BinaryReader r, string path)
    {
        _step = r.ReadInt32();
        TrainingCheckpoint.ReadFloats(r, _mom, path);
        TrainingCheckpoint.ReadFloats(r, _vel, path);
    }

    public void Step(float lr)
    {
        _step++;
        float bc1 = 1 - MathF.Pow(Beta1, _step), bc2 = 1 - MathF.Pow(Beta2, _step);
        var w = _m.Weights;
        var g = _m.Grads;
        for (int ti = 0; ti < _m.Tensors.Count; ti++)
        {
            var p = _m.Tensors[ti];
            int o = (int)p.Offset, end = o + p.Length;
            float decay = _decay[ti] ? 1 - lr * WeightDecay : 1;
            for (int i = o; i < end; i++)
            {
                float m = _mom[i] = Beta1 * _mom[i] + (1 - Beta1) * g[i];
                float v = _vel[i] = Beta2 * _vel[i] + (1 - Beta2) * g[i] * g[i];
                w[i] = w[i] * decay - lr * (m / bc1) / (MathF.Sqrt(v / bc2) + Eps);
            }
        }
    }
}

/// <summary>Linear warmup over <paramref name="Warmup"/> steps, then cosine decay from Peak to Peak·MinRatio at Total.</summary>
public sealed record LrSchedule(float Peak, int Warmup, int Total, float MinRatio = 0.1f)
{
    public float At(int step)
    {
        if (step < Warmup) return Peak * (step + 1) / Warmup;
        if (Total <= Warmup) return Peak;
        float progress = Math.Clamp((float)(step - Warmup) / (Total - Warmup), 0, 1);
        return Peak * (MinRatio + (1 - MinRatio) * 0.5f * (1 + MathF.Cos(MathF.PI * progress)));
    }
}
