using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Kernels;
using R1Sharp.Models;
using R1Sharp.Tensors;
using R1Sharp.Training;

namespace R1Sharp.Tests.Training;

/// <summary>The trainer and the engine run one model definition: same logits on the same GGUF.</summary>
public sealed class TrainerForwardTests
{
    [Theory]
    [InlineData("qwen2")]
    [InlineData("llama")]
    public void TrainerLogitsEqualEngineLogits(string arch)
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-train-").FullName;
        try
        {
            string path = Path.Combine(dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset(arch, "tiny") with { TiedOutput = false }, GgmlType.F32, 7, path);
            int[][] seqs = [[1, 5, 9, 200, 33, 7, 7, 101], [4, 250, 3], [17, 18, 19, 20, 21, 22]];

            TrainModel tm;
            using (var file = GgufFile.Open(path)) tm = TrainModel.Load(file);
            using var pool = new ComputePool(1);
            var net = new Transformer(tm, pool);
            var batch = new PackedBatch(seqs);
            net.Forward(batch);
            var trainerLogits = net.Logits.ToArray();

            using var lm = LoadedModel.Load(path, 2);
            int v = lm.Config.VocabSize;
            Assert.Equal(tm.Config.VocabSize, v);
            float maxDiff = 0;
            for (int s = 0; s < seqs.Length; s++)
            {
                using var session = new InferenceSession(lm.Model, 64, GgmlType.F32);
                var engine = session.Evaluate(seqs[s], allLogits: true).ToArray();
                for (int i = 0; i < seqs[s].Length * v; i++)
                    maxDiff = Math.Max(maxDiff, Math.Abs(engine[i] - trainerLogits[batch.Start[s] * v + i]));
            }
            Assert.True(maxDiff <= 1e-4f, $"max |trainer - engine| = {maxDiff}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void SavedCheckpointLoadsInTheEngineWithTheSameLogits()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-train-").FullName;
        try
        {
            var vocab = TaskVocab.Build();
            var tm = new TrainModel(TrainModel.Qwen2Config(vocab.Tokens.Length, 32, 2, 4, 2, 64, 64));
            tm.Initialize(3);
            string path = Path.Combine(dir, "ckpt.gguf");
            tm.Save(path, vocab, "test");
            using var pool = new ComputePool(1);
            var net = new Transformer(tm, pool);
            int[] seq = [vocab.BosId!.Value, 40, 41, 42, 7];
            net.Forward(new PackedBatch([seq]));
            using var lm = LoadedModel.Load(path, 1);
            using var session = new InferenceSession(lm.Model, 16, GgmlType.F32);
            var engine = session.Evaluate(seq, allLogits: true).ToArray();
            for (int i = 0; i < engine.Length; i++) Assert.True(Math.Abs(engine[i] - net.Logits[i]) <= 1e-4f);
            Assert.Equal(vocab.Tokens.Length, lm.Tokenizer.VocabSize);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
