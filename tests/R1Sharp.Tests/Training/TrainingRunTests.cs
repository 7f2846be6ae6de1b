using R1Sharp.Engine;
using R1Sharp.Kernels;
using R1Sharp.Sampling;
using R1Sharp.Tokenization;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Tests.Training;

public sealed class TrainingRunTests
{
    private static TrainModel Tiny(TokenizerData vocab, ulong seed)
    {
        var m = new TrainModel(TrainModel.Qwen2Config(vocab.Tokens.Length, dim: 32, layers: 2, heads: 4, kvHeads: 2, ffnDim: 64, context: 1024));
        m.Initialize(seed);
        return m;
    }

    [Fact]
    public void SftLossFallsInAShortRun()
    {
        var vocab = TaskVocab.Build();
        var model = Tiny(vocab, 1);
        using var pool = new ComputePool(1);
        var trainer = new SftTrainer(model, new BpeTokenizer(vocab), new ArithmeticTask(), pool,
            new SftOptions { Steps = 40, Batch = 8, LearningRate = 1e-2f, Warmup = 5 });
        var schedule = new LrSchedule(1e-2f, 5, 40);
        var losses = Enumerable.Range(0, 40).Select(s => trainer.Step(s, schedule.At(s)).Loss).ToArray();
        float first = losses.Take(3).Average(), last = losses.TakeLast(5).Average();
        Assert.True(last < 0.5f * first, $"loss went from {first} to {last}");
    }

    [Fact]
    public void SftLeavesOutExamplesLongerThanTheContext()
    {
        var vocab = TaskVocab.Build();
        var m = new TrainModel(TrainModel.Qwen2Config(vocab.Tokens.Length, dim: 32, layers: 1, heads: 4, kvHeads: 2, ffnDim: 64, context: 128));
        m.Initialize(1);
        using var pool = new ComputePool(1);
        var trainer = new SftTrainer(m, new BpeTokenizer(vocab), new ArithmeticTask(), pool, new SftOptions { Batch = 16 });
        var tok = new BpeTokenizer(vocab);
        var lengths = Enumerable.Range(0, 16).Select(i => SftTrainer.Example(tok, new ArithmeticTask(), new ArithmeticTask().Generate(TaskRegistry.TrainSeed(1, i))).Tokens.Length).ToList();
        Assert.Contains(lengths, l => l > 128);   // the batch has examples that do not fit
        Assert.Contains(lengths, l => l <= 128);  // and some that do
        var (loss, _, tokens) = trainer.Step(0, 1e-3f);
        Assert.Equal(lengths.Where(l => l <= 128).Sum(), tokens);
        Assert.True(float.IsFinite(loss));
    }

    [Fact]
    public void ARunStoppedEarlyOnALongerScheduleIsTheStartOfTheLongerRun()
    {
        var vocab = TaskVocab.Build();
        string dir = Directory.CreateTempSubdirectory("r1sharp-sched-").FullName;
        try
        {
            string[] Rows(int steps, int schedule)
            {
                using var pool = new ComputePool(1);
                var trainer = new SftTrainer(Tiny(vocab, 3), new BpeTokenizer(vocab), new ArithmeticTask(), pool,
                    new SftOptions { Steps = steps, ScheduleSteps = schedule, Batch = 2, Warmup = 2, LogEvery = 1 });
                string csv = Path.Combine(dir, $"{steps}.csv");
                trainer.Run(Path.Combine(dir, $"{steps}.gguf"), vocab, csv, null, TextWriter.Null);
                // step, loss, lr, grad_norm (the throughput column differs from run to run)
                return [.. File.ReadAllLines(csv).Skip(1).Select(l => string.Join(',', l.Split(',').Take(4)))];
            }
            var full = Rows(8, 0);
            var start = Rows(4, 8);
            Assert.Equal(full.Take(4), start);
            Assert.NotEqual(Rows(4, 0)[3], start[3]); // a 4-step schedule has decayed further by then
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(GrpoLoss.Grpo)]
    [InlineData(GrpoLoss.DrGrpo)]
    [InlineData(GrpoLoss.Dapo)]
    public void GrpoStepRunsWithTheEngineAndLogs(GrpoLoss loss)
    {
        var vocab = TaskVocab.Build();
        var model = Tiny(vocab, 2);
        using var pool = new ComputePool(1);
        var before = (float[])model.Weights.Clone();
        var trainer = new GrpoTrainer(model, vocab, new ArithmeticTask(), pool,
            new GrpoOptions { Steps = 1, PromptsPerStep = 2, Group = 3, MaxNewTokens = 6, Loss = loss, Updates = 2, Threads = 1 });
        var s = trainer.Step(0, 1e-3f);
        Assert.InRange(s.Length, 1, 6);
        Assert.InRange(s.FormatRate, 0, 1);
        // a random model earns the same reward (0) on every sample and starts at the reference: no advantage, no KL, no update
        Assert.Equal(0, s.Reward);
        Assert.Equal(before, model.Weights);
    }

    [Fact]
    public void RolloutSamplesEveryPromptGTimesAndIsSeeded()
    {
        var vocab = TaskVocab.Build();
        var model = Tiny(vocab, 3);
        string path = Path.Combine(Path.GetTempPath(), $"r1sharp-rollout-{Environment.ProcessId}.gguf");
        try
        {
            model.Save(path, vocab, "t");
            using var lm = LoadedModel.Load(path, 1);
            var tok = lm.Tokenizer;
            var prompts = new[] { TaskVocab.EncodePrompt(tok, "What is 1+2?"), TaskVocab.EncodePrompt(tok, "Compute 12*3.") };
            var sp = new SamplingParams { Temperature = 1f, Seed = 4 };
            var a = Rollout.Generate(lm, prompts, 3, sp, 10, 9);
            var b = Rollout.Generate(lm, prompts, 3, sp, 10, 9);
            Assert.Equal(6, a.Count);
            Assert.Equal(a.Select(c => c.Text), b.Select(c => c.Text));
            Assert.Equal([0, 0, 0, 1, 1, 1], a.Select(c => c.Prompt));
            // the batched engine gives slot s what a single session gives the same prompt, greedily
            var greedy = Rollout.Generate(lm, prompts, 2, SamplingParams.Greedy, 8, 0);
            using var session = new InferenceSession(lm.Model, 64);
            var single = session.Generate(prompts[1], new Sampler(SamplingParams.Greedy), 8, lm.IsEndOfGeneration).ToArray();
            Assert.Equal(single, greedy[3].Tokens);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
