// R1ChatClient as a Microsoft.Extensions.AI IChatClient over a tiny random-weight model: greedy decoding and a
// reasoning budget make every reply reasoning, a forced </think>, then an answer.
using Microsoft.Extensions.AI;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Chat;

public sealed class R1ChatClientTests : IClassFixture<R1ChatClientTests.Model>, IDisposable
{
    public sealed class Model : IDisposable
    {
        private readonly string _dir = Directory.CreateTempSubdirectory("r1sharp-ichatclient-").FullName;
        public LoadedModel Loaded { get; }
        public string Path { get; }

        public Model()
        {
            Path = System.IO.Path.Combine(_dir, "tiny.gguf");
            Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 11, Path);
            Loaded = LoadedModel.Load(Path, threads: 1);
        }

        public void Dispose()
        {
            Loaded.Dispose();
            Directory.Delete(_dir, true);
        }
    }

    private readonly R1ChatClient _client;
    private readonly Model _model;

    public R1ChatClientTests(Model model)
    {
        _model = model;
        _client = new R1ChatClient(model.Loaded, new R1ChatClientOptions { Slots = 2, ContextSize = 512, ModelId = "tiny" });
    }

    // speculation changes nothing a caller sees: the same reasoning and answer, the forced </think> included, while
    // the model drafting for itself has its drafts accepted
    [Fact]
    public async Task SpeculationGivesTheSameReplies()
    {
        using var lm = LoadedModel.Load(_model.Path, threads: 1);
        using var drafts = DraftModelSource.Load(_model.Path, lm, pMin: 0);
        using var fast = new R1ChatClient(lm, new R1ChatClientOptions
        {
            Slots = 2, ContextSize = 512, ModelId = "tiny", Speculation = new SpeculationOptions { Source = drafts, DraftMax = 5 },
        });
        foreach (string question in new[] { "What is 17+25?", "Say hello twice." })
        {
            List<Microsoft.Extensions.AI.ChatMessage> conversation = [new(ChatRole.User, question)];
            var expected = await ((IChatClient)_client).GetResponseAsync(conversation, Greedy(budget: 7, max: 40));
            var actual = await ((IChatClient)fast).GetResponseAsync(conversation, Greedy(budget: 7, max: 40));
            Assert.Equal(Texts(expected), Texts(actual));
            Assert.Contains(actual.Messages[0].Contents, c => c is TextReasoningContent);
            Assert.Equal(expected.Usage?.OutputTokenCount, actual.Usage?.OutputTokenCount);
        }
        Assert.True(fast.Scheduler.DraftTokens > 0);
        Assert.True(fast.Scheduler.AcceptedDraftTokens > fast.Scheduler.DraftTokens / 2, $"{fast.Scheduler.AcceptedDraftTokens} of {fast.Scheduler.DraftTokens} drafts accepted");
    }

    private static List<string> Texts(ChatResponse r) =>
        r.Messages[0].Contents.Select(c => c switch { TextReasoningContent t => "reasoning:" + t.Text, TextContent t => "content:" + t.Text, _ => "" }).ToList();

    public void Dispose() => _client.Dispose();

    private static ChatOptions Greedy(int budget = 5, int max = 24) => new()
    {
        Temperature = 0,
        MaxOutputTokens = max,
        AdditionalProperties = new() { [R1ChatClient.ReasoningBudgetKey] = budget },
    };

    [Fact]
    public async Task StreamsAConversationWithReasoningAndAnswerApart()
    {
        IChatClient client = _client;
        List<Microsoft.Extensions.AI.ChatMessage> conversation = [new(ChatRole.User, "What is 17+25?")];

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(conversation, Greedy())) updates.Add(u);

        var kinds = updates.SelectMany(u => u.Contents).Where(c => c is TextContent or TextReasoningContent).ToList();
        string reasoning = string.Concat(kinds.OfType<TextReasoningContent>().Select(c => c.Text));
        string answer = string.Concat(kinds.OfType<TextContent>().Select(c => c.Text));
        Assert.NotEmpty(reasoning);
        Assert.NotEmpty(answer);
        // all the reasoning streams before any of the answer
        int lastReasoning = kinds.FindLastIndex(c => c is TextReasoningContent);
        int firstAnswer = kinds.FindIndex(c => c is TextContent);
        Assert.True(lastReasoning < firstAnswer);
        Assert.DoesNotContain("</think>", reasoning + answer);

        var last = updates[^1];
        Assert.NotNull(last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.True(usage.OutputTokenCount <= 24);
        Assert.True(usage.ReasoningTokenCount >= 5);
        Assert.All(updates, u => Assert.Equal(ChatRole.Assistant, u.Role));
        Assert.All(updates, u => Assert.Equal("tiny", u.ModelId));

        // the whole response is the same text (greedy), reasoning and answer in their own contents
        var whole = await client.GetResponseAsync(conversation, Greedy());
        var msg = Assert.Single(whole.Messages);
        Assert.Equal(reasoning, Assert.IsType<TextReasoningContent>(msg.Contents[0]).Text);
        Assert.Equal(answer, msg.Text);
        Assert.Equal(last.FinishReason, whole.FinishReason);

        // the next turn: the reply goes back into the conversation; its prefix is reused from the slot's cache
        conversation.AddMessages(updates);
        conversation.Add(new(ChatRole.User, "And 18+25?"));
        var second = await client.GetStreamingResponseAsync(conversation, Greedy()).ToChatResponseAsync();
        Assert.NotEmpty(second.Text);
        Assert.True(second.Usage!.CachedInputTokenCount > 0);
    }

    [Fact]
    public async Task ThinkingSwitchesOffAndConcurrentCallsShareTheScheduler()
    {
        var off = new ChatOptions { Temperature = 0, MaxOutputTokens = 12, AdditionalProperties = new() { [R1ChatClient.ThinkingKey] = false } };
        var calls = Enumerable.Range(0, 3).Select(i => _client.GetResponseAsync([new(ChatRole.User, $"question {i}")], i == 0 ? off : Greedy(max: 16))).ToArray();
        var responses = await Task.WhenAll(calls);
        Assert.DoesNotContain(responses[0].Messages[0].Contents, c => c is TextReasoningContent);
        Assert.NotEmpty(responses[0].Text);
        Assert.All(responses.Skip(1), r => Assert.IsType<TextReasoningContent>(r.Messages[0].Contents[0]));
        Assert.Equal(0, _client.Scheduler.Running);

        var meta = Assert.IsType<ChatClientMetadata>(_client.GetService(typeof(ChatClientMetadata)));
        Assert.Equal("r1sharp", meta.ProviderName);
        await Assert.ThrowsAsync<ArgumentException>(() => _client.GetResponseAsync([new(ChatRole.User, "x")],
            new ChatOptions { AdditionalProperties = new() { [R1ChatClient.ReasoningBudgetKey] = "lots" } }));
    }
}
