// The continuous-batching scheduler on its own: chunked prefill changes nothing but the grouping, decodes keep
// running while a long prompt is prefilled, and shutdown drains or cancels what is running.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class SchedulerTests : IClassFixture<SchedulerTests.Model>
{
    public sealed class Model : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-sched-").FullName;
        public string Path { get; }

        public Model()
        {
            Path = System.IO.Path.Combine(_dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 11, Path);
        }

        public void Dispose() => Directory.Delete(_dir, true);
    }

    private readonly string _path;

    public SchedulerTests(Model m) => _path = m.Path;

    private static int[] Tokens(int n, int salt) => Enumerable.Range(0, n).Select(i => (i * 37 + salt * 101 + 3) % 250 + 1).ToArray();

    private static async Task<(List<string> Texts, GenerationChunk Last)> Collect(IAsyncEnumerable<GenerationChunk> stream)
    {
        var texts = new List<string>();
        GenerationChunk last = default;
        await foreach (var c in stream)
        {
            texts.Add(c.Text);
            last = c;
        }
        return (texts, last);
    }

    private static EngineRequest Request(int[] prompt, int max) => new() { Prompt = prompt, MaxTokens = max, IgnoreEos = true };

    [Fact]
    public async Task ChunkedPrefillMixedWithDecodesMatchesEachAlone()
    {
        int[] shortPrompt = Tokens(5, 1), longPrompt = Tokens(300, 2);
        string aloneShort, aloneLong;
        using (var lm = LoadedModel.Load(_path, threads: 1))
        using (var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 2, ContextSize = 512, PrefillChunk = 512 }))
        {
            aloneShort = string.Concat((await Collect(s.Submit(Request(shortPrompt, 40)))).Texts);
            aloneLong = string.Concat((await Collect(s.Submit(Request(longPrompt, 12)))).Texts);
        }

        var steps = new List<StepStats>();
        using (var lm = LoadedModel.Load(_path, threads: 1))
        using (var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration,
                   new SchedulerOptions { Slots = 2, ContextSize = 512, PrefillChunk = 16, OnStep = st => { lock (steps) steps.Add(st); } }))
        {
            s.Pause();
            var a = Collect(s.Submit(Request(shortPrompt, 40)));
            var b = Collect(s.Submit(Request(longPrompt, 12)));
            s.Resume();
            var (ta, la) = await a;
            var (tb, lb) = await b;
            Assert.Equal(aloneShort, string.Concat(ta));
            Assert.Equal(aloneLong, string.Concat(tb));
            Assert.Equal(FinishReason.Length, la.Finish);
            Assert.Equal(new GenerationUsage(300, 0, 12), lb.Usage);
        }
        lock (steps)
        {
            Assert.All(steps, st => Assert.True(st.PrefillTokens <= 16));
            Assert.Contains(steps, st => st.PrefillTokens > 0 && st.DecodeTokens > 0); // the short stream kept decoding
        }
    }

    [Fact]
    public async Task ShutdownDrainsThenCancels()
    {
        using var lm = LoadedModel.Load(_path, threads: 1);
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 1, ContextSize = 256 });
        var finished = s.Submit(Request(Tokens(4, 3), 8));
        await s.DrainAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
        Assert.Equal(FinishReason.Length, (await Collect(finished)).Last.Finish);
        Assert.Throws<InvalidOperationException>(() => s.Submit(Request(Tokens(4, 3), 8)));

        using var s2 = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 1, ContextSize = 256 });
        s2.Pause();
        var running = s2.Submit(Request(Tokens(4, 3), 200));
        var queued = s2.Submit(Request(Tokens(4, 4), 200));
        await s2.DrainAsync(new CancellationToken(canceled: true));
        Assert.Equal(FinishReason.Cancelled, (await Collect(running)).Last.Finish);
        Assert.Equal(FinishReason.Cancelled, (await Collect(queued)).Last.Finish);
        Assert.Equal(0, s2.Running + s2.Queued);
    }

    [Fact]
    public async Task StopStringsEndTheOutputBeforeTheStop()
    {
        using var lm = LoadedModel.Load(_path, threads: 1);
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 1, ContextSize = 256 });
        string full = string.Concat((await Collect(s.Submit(Request(Tokens(6, 5), 30)))).Texts);
        Assert.True(full.Length >= 10, full);
        string stop = full.Substring(full.Length / 2, 3);
        var (texts, last) = await Collect(s.Submit(Request(Tokens(6, 5), 30) with { StopStrings = ["\u0001never", stop] }));
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], string.Concat(texts));
        Assert.Equal(FinishReason.Stop, last.Finish);
    }

    [Fact]
    public async Task SteerForcesTokensThatStreamOut()
    {
        using var lm = LoadedModel.Load(_path, threads: 1);
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 1, ContextSize = 256 });
        int[] forced = lm.Tokenizer.Encode("</think>");
        int calls = 0;
        var (texts, last) = await Collect(s.Submit(Request(Tokens(6, 6), 10) with { Steer = (_, _) => ++calls == 2 ? forced : null }));
        Assert.Contains("</think>", string.Concat(texts));
        Assert.Equal(10, last.Usage!.CompletionTokens);
    }
}
