// The batched forward pass computes the same thing however tokens are grouped: one prompt pass versus
// token-by-token decode, several sequences in one batch versus each alone, and across chunk boundaries.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class ForwardConsistencyTests : IClassFixture<ForwardConsistencyTests.Model>
{
    public sealed class Model : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-engine-").FullName;
        public LoadedModel Lm { get; }

        public Model()
        {
            string path = Path.Combine(_dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset("llama", "tiny"), GgmlType.F32, 9, path);
            Lm = LoadedModel.Load(path, threads: 2);
        }

        public void Dispose()
        {
            Lm.Dispose();
            Directory.Delete(_dir, true);
        }
    }

    // Same arithmetic in a different grouping; only float summation order may differ.
    private const float Tolerance = 1e-5f;
    private readonly LoadedModel _lm;

    public ForwardConsistencyTests(Model m) => _lm = m.Lm;

    private int[] Tokens(int n, int salt) => Enumerable.Range(0, n).Select(i => (i * 37 + salt * 101 + 3) % 250 + 1).ToArray();

    // F16: a prompt's tokens share each widened block of cache rows in groups of up to 8
    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    public void PromptPassEqualsTokenByToken(GgmlType cacheType)
    {
        var tokens = Tokens(20, 1);
        using var a = new InferenceSession(_lm.Model, 32, cacheType);
        var all = a.Evaluate(tokens, allLogits: true).ToArray();
        using var b = new InferenceSession(_lm.Model, 32, cacheType);
        int v = _lm.Config.VocabSize;
        for (int i = 0; i < tokens.Length; i++)
        {
            var row = b.Evaluate(tokens.AsSpan(i, 1)).ToArray();
            AssertClose(all.AsSpan(i * v, v), row);
        }
    }

    [Theory]
    [InlineData(GgmlType.F32)]
    [InlineData(GgmlType.F16)]
    public void SequencesInOneBatchEqualEachAlone(GgmlType cacheType)
    {
        int v = _lm.Config.VocabSize;
        var s0 = Tokens(7, 2);
        var s1 = Tokens(12, 3);
        using var cache = _lm.Model.CreateCache(2, 32, cacheType);
        var batch = new Batch();
        batch.AddSequence(s0, 0, 0);
        batch.AddSequence(s1, 0, 1);
        var logits = new float[2 * v];
        _lm.Model.Forward(batch, cache, logits);
        Assert.Equal(new[] { 7, 12 }, cache.Lengths);

        // then one decode token for each, in one batch
        batch.Clear();
        batch.Add(5, 7, 0, true);
        batch.Add(6, 12, 1, true);
        var step = new float[2 * v];
        _lm.Model.Forward(batch, cache, step);

        using var alone0 = new InferenceSession(_lm.Model, 32, cacheType);
        AssertClose(logits.AsSpan(0, v), alone0.Evaluate(s0).ToArray());
        AssertClose(step.AsSpan(0, v), alone0.Evaluate([5]).ToArray());
        using var alone1 = new InferenceSession(_lm.Model, 32, cacheType);
        AssertClose(logits.AsSpan(v, v), alone1.Evaluate(s1).ToArray());
        AssertClose(step.AsSpan(v, v), alone1.Evaluate([6]).ToArray());
    }

    [Fact]
    public void BatchesLongerThanAChunkAreSplitTransparently()
    {
        int n = DecoderModel.MaxChunk + 37;
        var tokens = Tokens(n, 4);
        using var a = new InferenceSession(_lm.Model, n + 1);
        var last = a.Evaluate(tokens).ToArray();
        using var b = new InferenceSession(_lm.Model, n + 1);
        b.Evaluate(tokens.AsSpan(0, 300));
        var split = b.Evaluate(tokens.AsSpan(300)).ToArray();
        AssertClose(last, split);
    }

    [Fact]
    public void BadBatchesAreRejected()
    {
        using var cache = _lm.Model.CreateCache(1, 8);
        var logits = new float[_lm.Config.VocabSize];
        var batch = new Batch();
        batch.Add(_lm.Config.VocabSize, 0, 0, true);
        Assert.Throws<ArgumentOutOfRangeException>(() => _lm.Model.Forward(batch, cache, logits));
        batch.Clear();
        batch.Add(1, 3, 0, true); // a gap: the slot is empty
        Assert.Throws<ArgumentOutOfRangeException>(() => _lm.Model.Forward(batch, cache, logits));
        batch.Clear();
        batch.Add(1, 0, 1, true); // no such slot
        Assert.Throws<ArgumentOutOfRangeException>(() => _lm.Model.Forward(batch, cache, logits));
    }

    private static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        float max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max <= Tolerance, $"max |diff| {max} > {Tolerance}");
    }
}
