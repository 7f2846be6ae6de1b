// Several nodes in one process (Orleans' InProcessTestCluster): multi-turn conversations sent through random
// nodes reuse their cached prefix with affinity routing and mostly miss it with random routing; a job forwarded
// to another node streams back and is cancelled there when its caller goes away.
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Server;

namespace R1Sharp.Cluster.Tests;

public sealed class ClusterRoutingTests
{
    /// <summary>Share of follow-up turns whose cached prefix covers all the previous prompt that the new one repeats.</summary>
    private static async Task<(double HitRate, int Turns)> Converse(InProcessNodes nodes, int count, int turns, int seed)
    {
        var random = new Random(seed);
        string[] systems = ["You are a careful assistant who answers questions about arithmetic and explains each step. ",
                            "You are a poet who writes short verses about the sea, the wind and the stars at night. "];
        var conversations = Enumerable.Range(0, count).Select(i => new List<ChatMessage> { ChatMessage.System(systems[i % 2] + systems[i % 2]) }).ToList();
        var previous = new int[count][];
        int hits = 0, followUps = 0;
        for (int turn = 0; turn < turns; turn++)
            for (int c = 0; c < count; c++)
            {
                var conversation = conversations[c];
                conversation.Add(ChatMessage.User($"Question {turn} of conversation {c}: what is {c} plus {turn}?"));
                int[] prompt = nodes.Prompt(conversation);
                var (text, usage) = await nodes.RunAsync(random.Next(3), prompt);
                if (previous[c] is { } prev)
                {
                    followUps++;
                    // what the new prompt repeats of the previous one (the R1 template re-renders its last tokens)
                    int repeated = prev.AsSpan().CommonPrefixLength(prompt);
                    if (usage.CachedPromptTokens >= repeated) hits++;
                }
                previous[c] = prompt;
                var answer = new ReasoningParser(startsInReasoning: true);
                answer.Push(text);
                conversation.Add(new ChatMessage("assistant", answer.Content));
                // a user reads before typing; routes reach the other nodes within the share interval (20 ms)
                await Task.Delay(30);
            }
        return ((double)hits / followUps, followUps);
    }

    [Fact]
    public async Task FollowUpTurnsAtRandomNodesReuseTheirConversationsCache()
    {
        await using var nodes = await InProcessNodes.StartAsync(3, new RoutingOptions { BlockTokens = 16 });
        var (rate, turns) = await Converse(nodes, count: 6, turns: 4, seed: 1);
        Assert.Equal(18, turns);
        Assert.True(rate >= 0.9, $"affinity routing: {rate:P0} of follow-ups hit their cached prefix");
        // every node took a share of the conversations
        Assert.All(Enumerable.Range(0, 3), i => Assert.True(nodes.Engine(i).Status().Jobs > 0));
    }

    [Fact]
    public async Task RandomRoutingMostlyMissesTheCache()
    {
        await using var nodes = await InProcessNodes.StartAsync(3, new RoutingOptions { BlockTokens = 16, Policy = RoutePolicy.Random });
        var (rate, _) = await Converse(nodes, count: 6, turns: 4, seed: 1);
        Assert.True(rate < 0.7, $"random routing: {rate:P0} of follow-ups hit their cached prefix (about 1/3 expected)");
    }

    [Fact]
    public async Task AForwardedJobStreamsBackAndIsCancelledWhenItsCallerGoesAway()
    {
        await using var nodes = await InProcessNodes.StartAsync(2, new RoutingOptions { BlockTokens = 16 });
        int[] prompt = nodes.Prompt([ChatMessage.User("Tell me a long story about the sea and the wind.")]);
        // the caller's index believes its own slots all taken, so its router places the new prompt on the other node
        const int caller = 0, target = 1;
        for (int k = 0; k < 4; k++)
        {
            int[] other = nodes.Prompt([ChatMessage.User($"An earlier conversation, number {k}, that holds a slot.")]);
            nodes.Directory(caller).Index.Record(nodes.Address(caller), other, PrefixIndex<Orleans.Runtime.SiloAddress>.Chain(other, 16), 16, slots: 4);
        }
        Assert.Equal((nodes.Address(target), RouteReason.Placement), nodes.Router(caller).Choose(prompt));

        using var cts = new CancellationTokenSource();
        var job = new GenerationJob(new EngineRequest { Prompt = prompt, MaxTokens = 1500, IgnoreEos = true });
        var stream = await nodes.Router(caller).SubmitAsync(job, cts.Token);
        int tokens = 0;
        await foreach (var c in stream.WithCancellation(cts.Token))
        {
            tokens += c.Chunk.Tokens;
            if (tokens >= 5) break; // the client disconnects: the enumerator is disposed
        }
        Assert.True(tokens >= 5);
        cts.Cancel();
        await InProcessNodes.WaitUntil(() => nodes.Engine(target).Scheduler.Running == 0, "the forwarded job is cancelled on the node running it");
        Assert.Equal(1, nodes.Engine(target).Status().ForwardedJobs);
        Assert.True(nodes.Engine(target).Scheduler.CancelSignals >= 1);
        Assert.Equal(0, nodes.Engine(caller).Status().Jobs);
    }
}
