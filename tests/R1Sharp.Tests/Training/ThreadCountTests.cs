// The trainer splits every product over output rows, attention over (sequence, KV head) and the elementwise passes over
// tokens (norm weight gradients over columns), so each value is computed by the same float operations in the same
// order whatever the thread count: training at 1, 2 or 3 threads must give the same weights, bit for bit.
using R1Sharp.Kernels;
using R1Sharp.Tests.Cli;
using R1Sharp.Tokenization;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Tests.Training;

public sealed class ThreadCountTests
{
    /// <summary>Weights after <paramref name="steps"/> SFT steps on a model whose widths leave tails (head dim 12, FFN 80).</summary>
    private static float[] SftWeights(int threads, int steps)
    {
        var vocab = TaskVocab.Build();
        var m = new TrainModel(TrainModel.Qwen2Config(vocab.Tokens.Length, dim: 48, layers: 2, heads: 4, kvHeads: 2, ffnDim: 80, context: 1024));
        m.Initialize(11);
        using var pool = new ComputePool(threads);
        var trainer = new SftTrainer(m, new BpeTokenizer(vocab), new ArithmeticTask(), pool,
            new SftOptions { Steps = steps, Batch = 6, LearningRate = 1e-2f, Warmup = 1 });
        var schedule = new LrSchedule(1e-2f, 1, steps);
        for (int s = 0; s < steps; s++) trainer.Step(s, schedule.At(s));
        return m.Weights;
    }

    [Fact]
    public void SftStepsGiveTheSameWeightsAtOneTwoAndThreeThreads()
    {
        var one = SftWeights(1, 3);
        Assert.NotEqual(SftWeights(1, 0), one); // the steps changed the weights
        foreach (int threads in new[] { 2, 3 })
        {
            var other = SftWeights(threads, 3);
            for (int i = 0; i < one.Length; i++)
                if (BitConverter.SingleToInt32Bits(one[i]) != BitConverter.SingleToInt32Bits(other[i]))
                    Assert.Fail($"{threads} threads: weight {i} is {other[i]:R}, {one[i]:R} at one thread");
        }
    }

    private static float[] Weights(string path)
    {
        using var f = R1Sharp.Formats.GgufFile.Open(path);
        return TrainModel.Load(f).Weights;
    }

    /// <summary>train sft and train grpo through the CLI at --threads 1 and 3 write the same files.</summary>
    [Fact]
    public void TrainSftAndGrpoWriteTheSameFilesAtOneAndThreeThreads()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-threads-").FullName;
        try
        {
            string[] sft = ["train", "sft", "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "64", "--ctx", "256",
                            "--steps", "60", "--batch", "8", "--lr", "1e-2", "--warmup", "5", "--seed", "7"];
            byte[] Run(string[] args, int threads, string name)
            {
                string path = Path.Combine(dir, $"{name}-{threads}.gguf");
                var r = CliRunner.Run([.. args, "--threads", threads.ToString(), "-o", path]);
                Assert.True(r.ExitCode == 0, r.Stderr);
                return File.ReadAllBytes(path);
            }
            var sft1 = Run(sft, 1, "sft");
            Assert.True(sft1.AsSpan().SequenceEqual(Run(sft, 3, "sft")), "train sft: --threads 3 wrote other weights than --threads 1");
            // GRPO from that model (one trained this far earns rewards that differ within groups, so the steps update it)
            string[] grpo = ["train", "grpo", "-m", Path.Combine(dir, "sft-1.gguf"), "--steps", "3", "--prompts", "4", "--group", "4",
                             "--max-tokens", "40", "--seed", "3", "--lr", "1e-3"];
            var grpo1 = Run(grpo, 1, "grpo");
            Assert.NotEqual(Weights(Path.Combine(dir, "sft-1.gguf")), Weights(Path.Combine(dir, "grpo-1.gguf")));
            Assert.True(grpo1.AsSpan().SequenceEqual(Run(grpo, 3, "grpo")), "train grpo: --threads 3 wrote other weights than --threads 1");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
