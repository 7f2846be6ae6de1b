// train sft|grpo: the R1 recipe on small models. sft trains on generated worked solutions (from random weights, or
// continuing --init); grpo improves a checkpoint with group-sampled, rule-rewarded reinforcement learning.
using System.CommandLine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Tokenization;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Cli;

internal static class TrainCommand
{
    public static Command Create()
    {
        var cmd = new Command("train", "train a small reasoning model with the R1 recipe: sft, then grpo");
        cmd.Subcommands.Add(Sft());
        cmd.Subcommands.Add(Grpo());
        return cmd;
    }

    private static Option<string> TaskOption() => new("--task") { Description = $"task: {string.Join(", ", TaskRegistry.Names)}", DefaultValueFactory = _ => "arithmetic" };
    private static Option<int?> FormatOption() => new("--format") { Description = "arithmetic: the worked solutions' format, 1 (the earlier one) or 2 (every line a column step; the default)" };
    private static Option<string> OutOption() => new("--out", "-o") { Description = "where to write the trained GGUF", Required = true };
    private static Option<string?> CsvOption() => new("--csv") { Description = "per-step metrics as CSV (default: OUT with .csv)" };
    private static Option<string?> PlotOption() => new("--plot") { Description = "curves as PNG (default: OUT with .png)" };
    private static Option<string?> CheckpointDirOption() => new("--checkpoint-dir") { Description = "where --save-every writes checkpoints (default: OUT.ckpt)" };
    private static Option<string?> ResumeOption() => new("--resume") { Description = "continue a killed run from the newest complete checkpoint in DIR (same options as the run)" };

    /// <summary>The checkpoint folder (--resume's, else --checkpoint-dir, else beside OUT) and whether to resume from it.</summary>
    private static (string Dir, bool Resume) Checkpoints(ParseResult r, Option<string?> dir, Option<string?> resume, string output) =>
        r.GetValue(resume) is { } from ? (from, true) : (r.GetValue(dir) ?? TrainingCheckpoint.DefaultDir(output), false);

    /// <summary>--threads: 0 for every core; the weights are the same at any count.</summary>
    private static int TrainThreads(int threads) => threads switch
    {
        0 => Environment.ProcessorCount,
        < 0 => throw new ArgumentException($"--threads must be 0 (all cores) or positive, not {threads}"),
        _ => threads,
    };

    private static Command Sft()
    {
        var task = TaskOption();
        var format = FormatOption();
        var outPath = OutOption();
        var init = new Option<string?>("--init") { Description = "continue from this GGUF instead of random weights" };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 1000, Description = "optimizer steps" };
        var schedule = new Option<int>("--schedule-steps") { Description = "length of the learning-rate schedule (default: --steps); fewer steps stop a longer run early" };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 32, Description = "sequences per step" };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => 3e-3f, Description = "peak learning rate" };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 50, Description = "warmup steps" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1, Description = "seed of the initialization and of the problem stream" };
        var dim = new Option<int>("--dim") { DefaultValueFactory = _ => 128 };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 4 };
        var kvHeads = new Option<int>("--kv-heads") { DefaultValueFactory = _ => 2 };
        var ffn = new Option<int>("--ffn") { DefaultValueFactory = _ => 384 };
        var ctx = new Option<int>("--ctx") { DefaultValueFactory = _ => 512, Description = "context length of the model" };
        var saveEvery = new Option<int>("--save-every") { DefaultValueFactory = _ => 0, Description = "also write OUT and a checkpoint every N steps" };
        var checkpointDir = CheckpointDirOption();
        var resume = ResumeOption();
        var threads = CliCommon.ThreadsOption();
        var csv = CsvOption();
        var plot = PlotOption();
        var cmd = new Command("sft", "supervised training on generated step-by-step solutions (the distillation stage)")
            { task, format, outPath, init, steps, schedule, batch, lr, warmup, seed, dim, layers, heads, kvHeads, ffn, ctx, saveEvery, checkpointDir, resume, threads, csv, plot };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var t = TaskRegistry.Get(r.GetValue(task)!, r.GetValue(format));
            string output = r.GetValue(outPath)!;
            var (ckptDir, resuming) = Checkpoints(r, checkpointDir, resume, output);
            var vocab = TaskVocab.Build();
            TrainModel model;
            if (r.GetValue(init) is { } initPath)
            {
                using var file = GgufFile.Open(initPath);
                vocab = TokenizerData.FromGgufMetadata(file.Metadata);
                model = TrainModel.Load(file);
            }
            else
            {
                model = new TrainModel(TrainModel.Qwen2Config(vocab.Tokens.Length, r.GetValue(dim), r.GetValue(layers), r.GetValue(heads),
                    r.GetValue(kvHeads), r.GetValue(ffn), r.GetValue(ctx)));
                model.Initialize(r.GetValue(seed));
            }
            var o = new SftOptions
            {
                Steps = r.GetValue(steps), ScheduleSteps = r.GetValue(schedule), Batch = r.GetValue(batch), LearningRate = r.GetValue(lr), Warmup = r.GetValue(warmup),
                Seed = r.GetValue(seed), SaveEvery = r.GetValue(saveEvery),
                CheckpointDir = ckptDir, Resume = resuming,
            };
            if (o.Steps <= 0 || o.Batch <= 0 || o.SaveEvery < 0) throw new ArgumentException("--steps and --batch must be positive and --save-every not negative");
            if (o.ScheduleSteps != 0 && o.ScheduleSteps < o.Steps) throw new ArgumentException("--schedule-steps must be at least --steps");
            int nThreads = TrainThreads(r.GetValue(threads));
            using var pool = new ComputePool(nThreads);
            Console.Error.WriteLine($"sft: {t.Name}, {model.Count:N0} parameters (dim {model.Config.Dim}, {model.Config.Layers} layers, vocab {model.Config.VocabSize}), {o.Steps} steps x {o.Batch} sequences, {nThreads} thread{(nThreads == 1 ? "" : "s")}");
            var sft = new SftTrainer(model, new BpeTokenizer(vocab), t, pool, o);
            string sftCsv = r.GetValue(csv) ?? Path.ChangeExtension(output, ".csv"), sftPng = r.GetValue(plot) ?? Path.ChangeExtension(output, ".png");
            // a bar on a terminal (the step lines are in the CSV); the step lines on stderr otherwise
            if (CliProgress.IsTerminal) CliProgress.Bar("sft", "steps", p => sft.Run(output, vocab, sftCsv, sftPng, TextWriter.Null, p));
            else sft.Run(output, vocab, sftCsv, sftPng, Console.Error);
            Console.Error.WriteLine($"wrote {output}");
            return 0;
        }));
        return cmd;
    }

    private static Command Grpo()
    {
        var task = TaskOption();
        var format = FormatOption();
        var outPath = OutOption();
        var model = new Option<string>("--model", "-m") { Description = "the checkpoint to start from (usually the SFT one)", Required = true };
        var steps = new Option<int>("--steps") { DefaultValueFactory = _ => 100 };
        var prompts = new Option<int>("--prompts") { DefaultValueFactory = _ => 16, Description = "prompts per step" };
        var group = new Option<int>("--group", "-G") { DefaultValueFactory = _ => 8, Description = "samples per prompt" };
        var loss = new Option<string>("--loss") { DefaultValueFactory = _ => "grpo", Description = "grpo, dr_grpo or dapo" };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => 2e-4f };
        var beta = new Option<float>("--beta") { DefaultValueFactory = _ => 0.01f, Description = "weight of the k3 KL to the reference" };
        var epsLow = new Option<float>("--eps-low") { DefaultValueFactory = _ => 0.2f };
        var epsHigh = new Option<float?>("--eps-high") { Description = "upper clip (default 0.28 for dapo, else eps-low)" };
        var updates = new Option<int>("--updates") { DefaultValueFactory = _ => 1, Description = "policy updates per batch of samples (mu)" };
        var temperature = new Option<float>("--temperature") { DefaultValueFactory = _ => 1.0f };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 256, Description = "most tokens per completion" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 1 };
        var saveEvery = new Option<int>("--save-every") { DefaultValueFactory = _ => 0, Description = "write a checkpoint every N steps" };
        var checkpointDir = CheckpointDirOption();
        var resume = ResumeOption();
        var threads = CliCommon.ThreadsOption();
        var csv = CsvOption();
        var plot = PlotOption();
        var cmd = new Command("grpo", "reinforcement learning with group-relative advantages on rule-checked rewards")
            { task, format, outPath, model, steps, prompts, group, loss, lr, beta, epsLow, epsHigh, updates, temperature, maxTokens, seed, saveEvery, checkpointDir, resume, threads, csv, plot };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var t = TaskRegistry.Get(r.GetValue(task)!, r.GetValue(format));
            var lossKind = r.GetValue(loss) switch
            {
                "grpo" => GrpoLoss.Grpo, "dr_grpo" => GrpoLoss.DrGrpo, "dapo" => GrpoLoss.Dapo,
                var s => throw new ArgumentException($"--loss '{s}' is not one of grpo, dr_grpo, dapo"),
            };
            string output = r.GetValue(outPath)!;
            var (ckptDir, resuming) = Checkpoints(r, checkpointDir, resume, output);
            TrainModel policy;
            TokenizerData vocab;
            using (var file = GgufFile.Open(r.GetValue(model)!))
            {
                vocab = TokenizerData.FromGgufMetadata(file.Metadata);
                policy = TrainModel.Load(file);
            }
            var o = new GrpoOptions
            {
                Steps = r.GetValue(steps), PromptsPerStep = r.GetValue(prompts), Group = r.GetValue(group), Loss = lossKind,
                LearningRate = r.GetValue(lr), Beta = r.GetValue(beta), EpsLow = r.GetValue(epsLow), EpsHigh = r.GetValue(epsHigh),
                Updates = r.GetValue(updates), Temperature = r.GetValue(temperature), MaxNewTokens = r.GetValue(maxTokens),
                Seed = r.GetValue(seed), Threads = r.GetValue(threads),
                SaveEvery = r.GetValue(saveEvery), CheckpointDir = ckptDir, Resume = resuming,
            };
            if (o.Steps <= 0 || o.PromptsPerStep <= 0 || o.Group < 2 || o.Updates <= 0 || o.SaveEvery < 0)
                throw new ArgumentException("--steps, --prompts, --updates must be positive, --group at least 2 and --save-every not negative");
            int nThreads = TrainThreads(o.Threads);
            using var pool = new ComputePool(nThreads);
            Console.Error.WriteLine($"grpo ({r.GetValue(loss)}): {t.Name}, {policy.Count:N0} parameters, {o.Steps} steps x {o.PromptsPerStep} prompts x {o.Group} samples, {nThreads} thread{(nThreads == 1 ? "" : "s")}");
            var grpo = new GrpoTrainer(policy, vocab, t, pool, o);
            string grpoCsv = r.GetValue(csv) ?? Path.ChangeExtension(output, ".csv"), grpoPng = r.GetValue(plot) ?? Path.ChangeExtension(output, ".png");
            if (CliProgress.IsTerminal) CliProgress.Bar("grpo", "steps", p => grpo.Run(output, grpoCsv, grpoPng, TextWriter.Null, p));
            else grpo.Run(output, grpoCsv, grpoPng, Console.Error);
            Console.Error.WriteLine($"wrote {output}");
            return 0;
        }));
        return cmd;
    }
}
