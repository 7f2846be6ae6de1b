// Supervised fine-tuning (the distillation stage of R1): next-token cross-entropy on the completion tokens of
// generated worked solutions (reasoning in the think block, then the answer, then end-of-sentence). Problems come
// from an endless seeded stream, so no two steps see the same batch.
using System.Diagnostics;
using R1Sharp.Kernels;
using R1Sharp.Tokenization;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training;

public sealed record SftOptions
{
    public int Steps { get; init; } = 1000;
    /// <summary>Length of the learning-rate schedule (0: <see cref="Steps"/>); a run of fewer steps on a longer schedule
    /// is the start of the longer run.</summary>
    public int ScheduleSteps { get; init; }
    /// <summary>Sequences per step.</summary>
    public int Batch { get; init; } = 32;
    public float LearningRate { get; init; } = 3e-3f;
    public int Warmup { get; init; } = 50;
    public float WeightDecay { get; init; } = 0.1f;
    public float ClipNorm { get; init; } = 1.0f;
    public ulong Seed { get; init; } = 1;
    public int LogEvery { get; init; } = 10;
    /// <summary>Write the model, and a checkpoint into <see cref="CheckpointDir"/>, every N steps (0: only the model at the end).</summary>
    public int SaveEvery { get; init; }
    /// <summary>Where checkpoints go (<see cref="TrainingCheckpoint"/>); null writes none.</summary>
    public string? CheckpointDir { get; init; }
    /// <summary>Continue from the newest complete checkpoint in <see cref="CheckpointDir"/>.</summary>
    public bool Resume { get; init; }
}

public sealed class SftTrainer
{
    private readonly TrainModel _model;
    private readonly BpeTokenizer _tok;
    private readonly IReasoningTask _task;
    private readonly Transformer _net;
    private readonly AdamW _adam;
    private readonly SftOptions _o;

    public SftTrainer(TrainModel model, BpeTokenizer tokenizer, IReasoningTask task, ComputePool pool, SftOptions options)
    {
        _model = model;
        _tok = tokenizer;
        _task = task;
        _o = options;
        _net = new Transformer(model, pool);
        _adam = new AdamW(model, weightDecay: options.WeightDecay);
    }

    /// <summary>Prompt tokens + completion tokens + eos, and where the completion starts.</summary>
    public static (int[] Tokens, int CompletionStart) Example(BpeTokenizer tok, IReasoningTask task, Problem p)
    {
        int[] prompt = TaskVocab.EncodePrompt(tok, p);
        int[] completion = tok.Encode(task.Solution(p));
        return ([.. prompt, .. completion, tok.EosId ?? throw new InvalidOperationException("the task vocabulary has no EOS token")], prompt.Length);
    }

    /// <summary>One optimizer step on batch number <paramref name="step"/>; returns (mean loss per completion token, grad norm, tokens).</summary>
    public (float Loss, float GradNorm, int Tokens) Step(int step, float lr)
    {
        var seqs = new List<int[]>(_o.Batch);
        var starts = new List<int>(_o.Batch);
        for (int i = 0; i < _o.Batch; i++)
        {
            var p = _task.Generate(TaskRegistry.TrainSeed(_o.Seed, (long)step * _o.Batch + i));
            var (tokens, start) = Example(_tok, _task, p);
            if (tokens.Length > _model.Config.ContextLength) continue; // rare: long earlier turns before a long solution
            seqs.Add(tokens);
            starts.Add(start);
        }
        var batch = new PackedBatch(seqs);
        float loss = ForwardBackward(_net, batch, LogProbs.Targets(batch, starts));
        float norm = AdamW.ClipGradients(_model, _o.ClipNorm);
        _adam.Step(lr);
        return (loss, norm, batch.TokenCount);
    }

    /// <summary>Zeroes the gradients, then accumulates those of the mean cross-entropy over the rows with a target.</summary>
    public static float ForwardBackward(Transformer net, PackedBatch batch, int[] targets)
    {
        int vocab = net.Model.Config.VocabSize;
        net.Model.ZeroGrads();
        net.Forward(batch);
        var logp = new float[batch.TokenCount];
        LogProbs.Compute(net.Logits, targets, vocab, logp);
        int count = targets.Count(t => t >= 0);
        double sum = 0;
        var g = new float[batch.TokenCount];
        for (int t = 0; t < targets.Length; t++)
            if (targets[t] >= 0) { sum -= logp[t]; g[t] = -1f / count; }
        LogProbs.Backward(net.Logits, targets, g, vocab, net.DLogits);
        net.Backward();
        return (float)(sum / Math.Max(1, count));
    }

    /// <param name="progress">Told after every step (steps done, total, the latest loss); null for none.</param>
    public void Run(string outPath, TokenizerData vocab, string? csvPath, string? pngPath, TextWriter log,
        IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        var schedule = new LrSchedule(_o.LearningRate, _o.Warmup, _o.ScheduleSteps > 0 ? _o.ScheduleSteps : _o.Steps);
        // what makes two runs the same run: a checkpoint resumes only the run that wrote it
        string run = $"sft {_task.Name} params {_model.Count} steps {_o.Steps} schedule {_o.ScheduleSteps} batch {_o.Batch} lr {_o.LearningRate:R} warmup {_o.Warmup} " +
                     $"wd {_o.WeightDecay:R} clip {_o.ClipNorm:R} seed {_o.Seed}";
        int start = _o.Resume ? TrainingCheckpoint.Resume(_o.CheckpointDir!, run, _model, _adam, log) : 0;
        var tl = new TrainingLog(csvPath, start, "loss", "lr", "grad_norm", "tokens_per_s");
        var sw = Stopwatch.StartNew();
        double lossAcc = 0;
        int tokAcc = 0, n = 0;
        long lastTicks = 0;
        for (int step = start; step < _o.Steps; step++)
        {
            float lr = schedule.At(step);
            var (loss, norm, tokens) = Step(step, lr);
            lossAcc += loss; tokAcc += tokens; n++;
            progress?.Report((step + 1, _o.Steps, $"loss {loss:F4}"));
            if ((step + 1) % _o.LogEvery == 0 || step == _o.Steps - 1)
            {
                double secs = (sw.ElapsedTicks - lastTicks) / (double)Stopwatch.Frequency;
                lastTicks = sw.ElapsedTicks;
                double tps = tokAcc / secs;
                tl.Add(step + 1, lossAcc / n, lr, norm, tps);
                log.WriteLine($"sft step {step + 1}/{_o.Steps} loss {lossAcc / n:F4} lr {lr:G3} |g| {norm:F3} {tps:F0} tok/s elapsed {sw.Elapsed.TotalMinutes:F1} min");
                lossAcc = 0; tokAcc = 0; n = 0;
            }
            if (_o.SaveEvery > 0 && (step + 1) % _o.SaveEvery == 0 && step + 1 < _o.Steps)
            {
                _model.Save(outPath, vocab, "r1sharp-sft-" + _task.Name);
                if (_o.CheckpointDir is { } dir) TrainingCheckpoint.Write(dir, run, step + 1, _model, _adam);
            }
        }
        _model.Save(outPath, vocab, "r1sharp-sft-" + _task.Name);
        if (pngPath != null) tl.Plot(pngPath, $"SFT on {_task.Name}", [["loss"]]);
    }
}
