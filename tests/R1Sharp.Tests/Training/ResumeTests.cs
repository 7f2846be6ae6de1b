// Crash-safe training: a seeded SFT run and a GRPO run are killed (SIGKILL) at a random moment after a random
// checkpoint, resumed with --resume, and must end with the same file, bit for bit, as the run nobody killed; a torn
// or damaged checkpoint is skipped for the newest whole one, and a checkpoint of another run is refused.
using System.Diagnostics;
using R1Sharp.Tests.Cli;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Training;

public sealed class ResumeTests(ITestOutputHelper output)
{
    private static readonly string[] s_sft =
        ["train", "sft", "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ffn", "64", "--ctx", "256",
         "--steps", "60", "--batch", "8", "--lr", "1e-2", "--warmup", "5", "--seed", "7", "--threads", "1"];

    private static string[] Grpo(string model) =>
        ["train", "grpo", "-m", model, "--steps", "8", "--prompts", "4", "--group", "4", "--max-tokens", "40", "--seed", "3",
         "--lr", "1e-3", "--threads", "1"];

    [Fact]
    public void SftAndGrpoKilledAtARandomStepResumeToTheSameWeights()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-resume-").FullName;
        try
        {
            var rng = new Random();
            string sft = KillAndResume("sft", s_sft, dir, saveEvery: 5, steps: 60, rng);
            // GRPO from the SFT model (a random one earns no reward, so nothing would change)
            string grpo = KillAndResume("grpo", Grpo(sft), dir, saveEvery: 1, steps: 8, rng);
            Assert.NotEqual(Weights(sft), Weights(grpo));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The run whole, then killed after a random checkpoint and resumed: both must write the same file. Returns the whole run's output.</summary>
    private string KillAndResume(string name, string[] args, string dir, int saveEvery, int steps, Random rng)
    {
        string whole = Path.Combine(dir, $"{name}-whole.gguf"), resumed = Path.Combine(dir, $"{name}-resumed.gguf");
        var r = CliRunner.Run([.. args, "-o", whole]);
        Assert.True(r.ExitCode == 0, r.Stderr);

        string ckpt = Path.Combine(dir, $"{name}-ckpt");
        string[] run = [.. args, "-o", resumed, "--save-every", saveEvery.ToString(), "--checkpoint-dir", ckpt];
        int checkpoints = (steps - 1) / saveEvery;
        int after = rng.Next(1, checkpoints) * saveEvery; // kill once this step's checkpoint exists, a random 0-40 ms later
        int delay = rng.Next(0, 40);
        bool killed = KillAfter(run, ckpt, after, delay);
        if (!killed) // the machine was so fast the run ended first: kill right at the first checkpoint instead
        {
            Directory.Delete(ckpt, recursive: true);
            (after, delay) = (saveEvery, 0);
            killed = KillAfter(run, ckpt, after, delay);
        }
        Assert.True(killed, $"{name}: the run ended before it could be killed");
        var left = TrainingCheckpoint.List(ckpt);
        output.WriteLine($"{name}: killed {delay} ms after the checkpoint of step {after} appeared; left {string.Join(", ", left.Select(c => c.Step))} " +
                         $"and {Directory.GetFiles(ckpt, "*.tmp").Length} temp files");

        r = CliRunner.Run([.. args, "-o", resumed, "--save-every", saveEvery.ToString(), "--resume", ckpt]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains($"resume: step {left[0].Step} from", r.Stderr);
        Assert.True(File.ReadAllBytes(whole).AsSpan().SequenceEqual(File.ReadAllBytes(resumed)), $"{name}: the resumed run's weights differ from the whole run's");
        return whole;
    }

    /// <summary>Starts r1sharp with <paramref name="args"/> and SIGKILLs it <paramref name="delayMs"/> after the checkpoint of step <paramref name="step"/> appears; false when it ended first.</summary>
    private static bool KillAfter(string[] args, string ckpt, int step, int delayMs)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "r1sharp.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        var sw = Stopwatch.StartNew();
        while (!p.HasExited && sw.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (Directory.Exists(ckpt) && TrainingCheckpoint.List(ckpt) is [var newest, ..] && newest.Step >= step) break;
            Thread.Sleep(1);
        }
        Thread.Sleep(delayMs);
        if (p.HasExited) return false;
        p.Kill(); // SIGKILL
        p.WaitForExit();
        File.Delete(Path.Combine(Path.GetTempPath(), $"r1sharp-grpo-{p.Id}.gguf")); // GRPO's rollout copy, which a killed run leaves
        return true;
    }

    private static float[] Weights(string path)
    {
        using var f = R1Sharp.Formats.GgufFile.Open(path);
        return TrainModel.Load(f).Weights;
    }

    // ---- the checkpoint files ----

    private static (TrainModel Model, AdamW Adam) Tiny(ulong seed)
    {
        var vocab = TaskVocab.Build();
        var m = new TrainModel(TrainModel.Qwen2Config(vocab.Tokens.Length, dim: 16, layers: 1, heads: 2, kvHeads: 1, ffnDim: 32, context: 64));
        m.Initialize(seed);
        var adam = new AdamW(m);
        var rng = new Random((int)seed);
        for (int i = 0; i < m.Grads.Length; i++) m.Grads[i] = (float)rng.NextDouble() - 0.5f;
        adam.Step(1e-2f);
        return (m, adam);
    }

    [Fact]
    public void ATornOrDamagedCheckpointIsSkippedForTheNewestWholeOne()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-ckpt-").FullName;
        try
        {
            var (m, adam) = Tiny(1);
            TrainingCheckpoint.Write(dir, "run", 3, m, adam);
            var saved = (float[])m.Weights.Clone();
            adam.Step(1e-2f);
            string newest = TrainingCheckpoint.Write(dir, "run", 5, m, adam);
            File.WriteAllBytes(Path.Combine(dir, "step-00000007.ckpt.123.tmp"), [1, 2, 3]); // a write killed before its rename

            var rng = new Random();
            byte[] bytes = File.ReadAllBytes(newest);
            int cut = rng.Next(0, bytes.Length);
            File.WriteAllBytes(newest, bytes[..cut]); // torn
            var (back, backAdam) = Tiny(2);
            var log = new StringWriter();
            Assert.Equal(3, TrainingCheckpoint.Resume(dir, "run", back, backAdam, log));
            Assert.Equal(saved, back.Weights);
            Assert.Equal(1, backAdam.StepCount);
            Assert.Contains("skipping step-00000005.ckpt", log.ToString());

            bytes[rng.Next(4, bytes.Length)] ^= 0x10; // one bit flipped anywhere past the magic
            File.WriteAllBytes(newest, bytes);
            Assert.Equal(3, TrainingCheckpoint.Resume(dir, "run", back, backAdam, TextWriter.Null));
            Assert.NotNull(TrainingCheckpoint.Verify(bytes));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ACheckpointOfAnotherRunIsRefusedAndOnlyTheNewestTwoAreKept()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-ckpt-").FullName;
        try
        {
            var (m, adam) = Tiny(1);
            for (int step = 1; step <= 4; step++) TrainingCheckpoint.Write(dir, "sft steps 60", step, m, adam);
            Assert.Equal([4, 3], TrainingCheckpoint.List(dir).Select(c => c.Step));
            var e = Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Resume(dir, "sft steps 61", m, adam, TextWriter.Null));
            Assert.Contains("another run", e.Message);
            var (other, otherAdam) = Tiny(1);
            var bigger = new TrainModel(TrainModel.Qwen2Config(other.Config.VocabSize, dim: 32, layers: 1, heads: 2, kvHeads: 1, ffnDim: 32, context: 64));
            Assert.Throws<InvalidDataException>(() => TrainingCheckpoint.Resume(dir, "sft steps 60", bigger, new AdamW(bigger), TextWriter.Null));
            GC.KeepAlive(otherAdam);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ResumeFromAFolderWithoutCheckpointsIsAOneLineError()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-ckpt-").FullName;
        try
        {
            var r = CliRunner.Run([.. s_sft, "-o", Path.Combine(dir, "x.gguf"), "--resume", Path.Combine(dir, "none")]);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("checkpoint folder not found", r.Stderr);
            Assert.DoesNotContain("   at ", r.Stderr); // no stack trace
            Directory.CreateDirectory(Path.Combine(dir, "empty"));
            r = CliRunner.Run([.. s_sft, "-o", Path.Combine(dir, "x.gguf"), "--resume", Path.Combine(dir, "empty")]);
            Assert.NotEqual(0, r.ExitCode);
            Assert.Contains("no complete checkpoint", r.Stderr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
