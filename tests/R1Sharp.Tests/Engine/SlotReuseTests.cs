// Which free slot a new request gets: its own conversation's (the longest shared prefix, when that covers at least
// half the prompt or nearly all the slot's last prompt), else the least recently used one, so conversations that
// share only an opening keep their slots.
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed class SlotReuseTests : IClassFixture<SchedulerTests.Model>
{
    private readonly string _path;

    public SlotReuseTests(SchedulerTests.Model m) => _path = m.Path;

    private static int[] Tokens(int n, int salt) => Enumerable.Range(0, n).Select(i => (i * 37 + salt * 101 + 3) % 250 + 1).ToArray();

    private static async Task<GenerationUsage> Run(Scheduler s, int[] prompt)
    {
        GenerationUsage? usage = null;
        await foreach (var c in s.Submit(new EngineRequest { Prompt = prompt, MaxTokens = 4, IgnoreEos = true })) usage = c.Usage ?? usage;
        return usage!;
    }

    [Fact]
    public async Task AlternatingConversationsSharingAnOpeningKeepTheirOwnSlots()
    {
        using var lm = LoadedModel.Load(_path, threads: 1);
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 2, ContextSize = 512 });
        int[] opening = Tokens(6, 9);
        int[] a = [.. opening, .. Tokens(40, 1)], b = [.. opening, .. Tokens(40, 2)];
        await Run(s, a);
        await Run(s, b); // shares 6 of 46 tokens with a's slot: takes the empty slot instead of overwriting a
        var aNext = await Run(s, [.. a, .. Tokens(10, 3)]);
        var bNext = await Run(s, [.. b, .. Tokens(10, 4)]);
        Assert.Equal(a.Length, aNext.CachedPromptTokens);
        Assert.Equal(b.Length, bNext.CachedPromptTokens);
    }

    [Fact]
    public async Task AShortSharedPrefixGoesToTheLeastRecentlyUsedSlot()
    {
        using var lm = LoadedModel.Load(_path, threads: 1);
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 2, ContextSize = 512 });
        int[] a = Tokens(30, 1), b = Tokens(30, 2), c = [.. a[..5], .. Tokens(30, 5)];
        await Run(s, a);
        await Run(s, b);
        // c shares 5 tokens with a (the older slot): under half its prompt, so it takes the least recently used slot, a's, anyway
        Assert.Equal(5, (await Run(s, c)).CachedPromptTokens);
        Assert.Equal(b.Length, (await Run(s, [.. b, 7])).CachedPromptTokens);
        // a's conversation lost its slot to c; a long shared prefix is reused wherever it is
        Assert.Equal(c.Length, (await Run(s, [.. c, 9, 9])).CachedPromptTokens);
    }

    [Fact]
    public async Task AFollowUpAfterALongAnswerStillFindsItsSlot()
    {
        using var lm = LoadedModel.Load(_path, threads: 1);
        using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, new SchedulerOptions { Slots = 2, ContextSize = 512 });
        int[] a = Tokens(12, 1);
        await Run(s, a);
        // the next turn repeats a but its last 2 tokens, then a long answer and question: 10 of 62 tokens shared
        Assert.Equal(10, (await Run(s, [.. a[..^2], .. Tokens(50, 2)])).CachedPromptTokens);
    }
}
