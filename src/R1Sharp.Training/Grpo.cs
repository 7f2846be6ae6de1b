// Group Relative Policy Optimization with rule-checked rewards (DeepSeekMath / R1), and its Dr. GRPO and DAPO variants.
// Each step: G samples per prompt from the current policy with the inference engine, rewards by the task's rules,
// advantages normalized within each group, then the clipped surrogate with a k3 KL penalty to the frozen reference:
//   loss_t = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A) + β·(π_ref/π − log(π_ref/π) − 1),  ρ = π/π_old.
using System.Diagnostics;
using R1Sharp.Engine;
using R1Sharp.Kernels;
using R1Sharp.Sampling;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training;

public enum GrpoLoss
{
    /// <summary>A = (r − mean)/std per group; per-token losses averaged per sequence, then over sequences.</summary>
    Grpo,
    /// <summary>Dr. GRPO: A = r − mean (no std); token losses summed per sequence and divided by a constant (max tokens).</summary>
    DrGrpo,
    /// <summary>DAPO: ε_high 0.28 (clip-higher), groups whose rewards are all equal dropped, token-level averaging over the batch.</summary>
    Dapo,
}

public sealed record GrpoOptions
{
    public int Steps { get; init; } = 100;
    public int PromptsPerStep { get; init; } = 16;
    /// <summary>Samples per prompt (G).</summary>
    public int Group { get; init; } = 8;
    public GrpoLoss Loss { get; init; } = GrpoLoss.Grpo;
    public float LearningRate { get; init; } = 2e-4f;
    public int Warmup { get; init; } = 5;
    public float Beta { get; init; } = 0.01f;
    public float EpsLow { get; init; } = 0.2f;
    /// <summary>Upper clip; null means 0.28 for DAPO and ε_low otherwise.</summary>
    public float? EpsHigh { get; init; }
    /// <summary>Policy updates per batch of samples (μ); ρ differs from 1 from the second on.</summary>
    public int Updates { get; init; } = 1;
    public float Temperature { get; init; } = 1.0f;
    public int MaxNewTokens { get; init; } = 256;
    public float ClipNorm { get; init; } = 1.0f;
    public ulong Seed { get; init; } = 1;
    public int Threads { get; init; }
    /// <summary>Write a checkpoint into <see cref="CheckpointDir"/> every N steps (0: none).</summary>
    public int SaveEvery { get; init; }
    /// <summary>Where checkpoints go (<see cref="TrainingCheckpoint"/>); null writes none.</summary>
    public string? CheckpointDir { get; init; }
    /// <summary>Continue from the newest complete checkpoint in <see cref="CheckpointDir"/> (the reference policy stays the starting model).</summary>
    public bool Resume { get; init; }
    public float EpsHighResolved => EpsHigh ?? (Loss == GrpoLoss.Dapo ? 0.28f : EpsLow);
}

/// <summary>What one GRPO step measured.</summary>
public sealed record GrpoStats(double Reward, double Accuracy, double FormatRate, double Kl, double Length, double ClipFraction, double KeptGroups, double Loss);

public sealed class GrpoTrainer
{
    private readonly TrainModel _policy;
    private readonly Transformer _net, _refNet;
    private readonly AdamW _adam;
    private readonly BpeTokenizer _tok;
    private readonly TokenizerData _vocab;
    private readonly IReasoningTask _task;
    private readonly GrpoOptions _o;
    private readonly string _scratchPath;

    public GrpoTrainer(TrainModel policy, TokenizerData vocab, IReasoningTask task, ComputePool pool, GrpoOptions options)
    {
        _policy = policy;
        _vocab = vocab;
        _tok = new BpeTokenizer(vocab);
        _task = task;
        _o = options;
        _net = new Transformer(policy, pool);
        _refNet = new Transformer(policy.Clone(), pool);
        _adam = new AdamW(policy, weightDecay: 0f);
        _scratchPath = Path.Combine(Path.GetTempPath(), $"r1sharp-grpo-{Environment.ProcessId}.gguf");
    }

    /// <summary>Group-normalized advantages of one group's rewards, by the loss variant's rule.</summary>
    public static float[] Advantages(ReadOnlySpan<float> rewards, GrpoLoss loss)
    {
        float mean = 0;
        foreach (float r in rewards) mean += r;
        mean /= rewards.Length;
        float var = 0;
        foreach (float r in rewards) var += (r - mean) * (r - mean);
        float std = MathF.Sqrt(var / rewards.Length);
        var a = new float[rewards.Length];
        for (int i = 0; i < a.Length; i++)
            a[i] = loss == GrpoLoss.DrGrpo ? rewards[i] - mean : (rewards[i] - mean) / (std + 1e-4f);
        return a;
    }

    /// <summary>
    /// ∂loss/∂log π for one token and its loss: the clipped surrogate (zero gradient where the clipped branch is the
    /// smaller) plus β·k3, with k3 = e^d − d − 1, d = log π_ref − log π.
    /// </summary>
    public static (float Grad, float Loss, bool Clipped) TokenLoss(float logp, float logpOld, float logpRef, float adv, float epsLow, float epsHigh, float beta)
    {
        float ratio = MathF.Exp(logp - logpOld);
        float clippedRatio = Math.Clamp(ratio, 1 - epsLow, 1 + epsHigh);
        float unclipped = ratio * adv, clipped = clippedRatio * adv;
        bool useClipped = clipped < unclipped;
        float grad = useClipped ? 0f : -adv * ratio;
        float d = logpRef - logp;
        float ed = MathF.Exp(d);
        float loss = -MathF.Min(unclipped, clipped) + beta * (ed - d - 1);
        grad += beta * (1 - ed);
        return (grad, loss, useClipped);
    }

    public GrpoStats Step(int step, float lr)
    {
        int P = _o.PromptsPerStep, G = _o.Group;
        var problems = Enumerable.Range(0, P).Select(i => _task.Generate(TaskRegistry.TrainSeed(_o.Seed ^ 0x6770, (long)step * P + i))).ToList();
        var prompts = problems.Select(p => TaskVocab.EncodePrompt(_tok, p)).ToList();

        // sample G completions per prompt with the engine on the current weights
        _policy.Save(_scratchPath, _vocab, "r1sharp-grpo-policy");
        List<Completion> completions;
        using (var lm = LoadedModel.Load(_scratchPath, _o.Threads))
        {
            var sp = new SamplingParams { Temperature = _o.Temperature, TopP = 1f, Seed = _o.Seed };
            // prompt + completion must fit the trainer's context
            int maxNew = Math.Min(_o.MaxNewTokens, _policy.Config.ContextLength - prompts.Max(p => p.Length));
            completions = Rollout.Generate(lm, prompts, G, sp, maxNew, _o.Seed * 1_000_003UL + (ulong)step);
        }

        // rewards by the rules, advantages within each group
        var rewards = new float[P * G];
        double acc = 0, fmt = 0, len = 0;
        for (int i = 0; i < P * G; i++)
        {
            var r = _task.Score(problems[i / G], completions[i].Text);
            rewards[i] = r.Value;
            acc += r.Correct ? 1 : 0;
            fmt += r.WellFormed ? 1 : 0;
            len += completions[i].Tokens.Length;
        }
        var seqs = new List<int[]>();
        var starts = new List<int>();
        var advs = new List<float>();
        int kept = 0;
        for (int g = 0; g < P; g++)
        {
            var groupRewards = rewards.AsSpan(g * G, G);
            bool allEqual = true;
            foreach (float r in groupRewards) allEqual &= r == groupRewards[0];
            if (_o.Loss == GrpoLoss.Dapo && allEqual) continue;
            kept++;
            var a = Advantages(groupRewards, _o.Loss);
            for (int j = 0; j < G; j++)
            {
                var c = completions[g * G + j];
                if (c.Tokens.Length == 0) continue;
                seqs.Add([.. prompts[g], .. c.Tokens]);
                starts.Add(prompts[g].Length);
                advs.Add(a[j]);
            }
        }
        double meanReward = rewards.Average();
        int n = P * G;
        if (seqs.Count == 0)
            return new GrpoStats(meanReward, acc / n, fmt / n, 0, len / n, 0, 0, 0);

        var batch = new PackedBatch(seqs);
        var targets = LogProbs.Targets(batch, starts);
        int vocab = _policy.Config.VocabSize;
        var logpOld = new float[batch.TokenCount];
        var logpRef = new float[batch.TokenCount];
        var logp = new float[batch.TokenCount];
        if (_o.Beta > 0)
        {
            _refNet.Forward(batch);
            LogProbs.Compute(_refNet.Logits, targets, vocab, logpRef);
        }

        // per-token weights of the aggregation: per sequence mean (GRPO), constant (Dr. GRPO), or token mean (DAPO)
        var weight = new float[batch.TokenCount];
        var advantage = new float[batch.TokenCount];
        int totalTokens = targets.Count(t => t >= 0);
        for (int s = 0; s < batch.Count; s++)
        {
            int count = batch.Length[s] - starts[s];
            float w = _o.Loss switch
            {
                GrpoLoss.Grpo => 1f / (count * batch.Count),
                GrpoLoss.DrGrpo => 1f / (_o.MaxNewTokens * batch.Count),
                _ => 1f / totalTokens,
            };
            for (int t = starts[s] - 1; t < batch.Length[s] - 1; t++) { weight[batch.Start[s] + t] = w; advantage[batch.Start[s] + t] = advs[s]; }
        }

        double kl = 0, clipFrac = 0, lossSum = 0;
        var grad = new float[batch.TokenCount];
        for (int u = 0; u < _o.Updates; u++)
        {
            _policy.ZeroGrads();
            _net.Forward(batch);
            LogProbs.Compute(_net.Logits, targets, vocab, logp);
            if (u == 0) logp.CopyTo(logpOld, 0);
            if (_o.Beta <= 0) logp.CopyTo(logpRef, 0);
            kl = 0; clipFrac = 0; lossSum = 0;
            for (int t = 0; t < batch.TokenCount; t++)
            {
                if (targets[t] < 0) { grad[t] = 0; continue; }
                var (gr, l, clipped) = TokenLoss(logp[t], logpOld[t], logpRef[t], advantage[t], _o.EpsLow, _o.EpsHighResolved, _o.Beta);
                grad[t] = gr * weight[t];
                lossSum += l * weight[t];
                float d = logpRef[t] - logp[t];
                kl += MathF.Exp(d) - d - 1;
                clipFrac += clipped ? 1 : 0;
            }
            // LogProbs.Backward takes ∂L/∂log π
            LogProbs.Backward(_net.Logits, targets, grad, vocab, _net.DLogits);
            _net.Backward();
            AdamW.ClipGradients(_policy, _o.ClipNorm);
            _adam.Step(lr);
        }
        return new GrpoStats(meanReward, acc / n, fmt / n, kl / totalTokens, len / n, clipFrac / totalTokens, (double)kept / P, lossSum);
    }

    /// <param name="progress">Told after every step (steps done, total, reward and accuracy); null for none.</param>
    public void Run(string outPath, string? csvPath, string? pngPath, TextWriter log,
        IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        var schedule = new LrSchedule(_o.LearningRate, _o.Warmup, _o.Steps, MinRatio: 0.5f);
        // what makes two runs the same run: a checkpoint resumes only the run that wrote it (the rollouts' seeds
        // come from the seed and the step, so the step is all the random state there is)
        string run = $"grpo {LossName(_o.Loss)} {_task.Name} params {_policy.Count} steps {_o.Steps} prompts {_o.PromptsPerStep} group {_o.Group} " +
                     $"lr {_o.LearningRate:R} warmup {_o.Warmup} beta {_o.Beta:R} eps {_o.EpsLow:R}/{_o.EpsHighResolved:R} updates {_o.Updates} " +
                     $"temperature {_o.Temperature:R} max-tokens {_o.MaxNewTokens} clip {_o.ClipNorm:R} seed {_o.Seed}";
        int start = _o.Resume ? TrainingCheckpoint.Resume(_o.CheckpointDir!, run, _policy, _adam, log) : 0;
        var tl = new TrainingLog(csvPath, start, "reward", "accuracy", "format", "kl", "length", "clip_frac", "kept_groups", "loss");
        var sw = Stopwatch.StartNew();
        try
        {
            for (int step = start; step < _o.Steps; step++)
            {
                float lr = schedule.At(step);
                var s = Step(step, lr);
                tl.Add(step + 1, s.Reward, s.Accuracy, s.FormatRate, s.Kl, s.Length, s.ClipFraction, s.KeptGroups, s.Loss);
                progress?.Report((step + 1, _o.Steps, $"reward {s.Reward:F3} acc {s.Accuracy:F3}"));
                log.WriteLine($"grpo step {step + 1}/{_o.Steps} reward {s.Reward:F3} acc {s.Accuracy:F3} format {s.FormatRate:F3} kl {s.Kl:F5} " +
                              $"len {s.Length:F1} clip {s.ClipFraction:F3} kept {s.KeptGroups:F2} elapsed {sw.Elapsed.TotalMinutes:F1} min");
                if (pngPath != null && (step + 1) % 10 == 0) Plot(tl, pngPath);
                if (_o.SaveEvery > 0 && (step + 1) % _o.SaveEvery == 0 && step + 1 < _o.Steps && _o.CheckpointDir is { } dir)
                    TrainingCheckpoint.Write(dir, run, step + 1, _policy, _adam);
            }
        }
        finally
        {
            File.Delete(_scratchPath);
        }
        _policy.Save(outPath, _vocab, $"r1sharp-grpo-{_task.Name}");
        if (pngPath != null) Plot(tl, pngPath);
    }

    public static string LossName(GrpoLoss loss) => loss switch { GrpoLoss.Grpo => "grpo", GrpoLoss.DrGrpo => "dr_grpo", _ => "dapo" };

    private void Plot(TrainingLog tl, string pngPath) =>
        tl.Plot(pngPath, $"GRPO ({LossName(_o.Loss)}) on {_task.Name}", [["reward", "accuracy", "format"], ["kl"], ["length"]], smooth: 5);
}
