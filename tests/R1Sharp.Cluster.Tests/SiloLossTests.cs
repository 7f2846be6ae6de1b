// A node lost under load (its silo killed, no goodbye): the jobs it was running end, for their callers on other
// nodes, with NodeUnavailableException within the detection time; the others' jobs go on; membership marks it
// dead; new jobs go to the living nodes; a node that joins afterwards takes work.
using System.Diagnostics;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Server;

namespace R1Sharp.Cluster.Tests;

public sealed class SiloLossTests
{
    [Fact]
    public async Task ALostNodeEndsItsJobsWithAnErrorAndTheRestGoOn()
    {
        await using var nodes = await InProcessNodes.StartAsync(3, new RoutingOptions { BlockTokens = 16 }, slots: 2);
        const int victim = 2;
        var victimAddress = nodes.Address(victim);
        // long jobs from nodes 0 and 1, spread by placement over all three nodes
        var jobs = new List<(int Caller, Task<(int Tokens, Exception? Error, TimeSpan At)> Run)>();
        var clock = Stopwatch.StartNew();
        for (int k = 0; k < 6; k++)
        {
            int caller = k % 2;
            int[] prompt = nodes.Prompt([ChatMessage.User($"Tell me story number {k} about the sea, the wind and the stars.")]);
            var stream = await nodes.Router(caller).SubmitAsync(new GenerationJob(new EngineRequest { Prompt = prompt, MaxTokens = 1000, IgnoreEos = true }), default);
            jobs.Add((caller, Drain(stream, clock)));
        }
        await InProcessNodes.WaitUntil(() => nodes.Engine(victim).Scheduler.Running > 0, "the victim runs some of the jobs");
        nodes.Engine(victim).Scheduler.Pause(); // it neither finishes nor answers any more: as good as dead to the callers
        int onVictim = nodes.Engine(victim).Scheduler.Running + nodes.Engine(victim).Scheduler.Queued;
        var killed = clock.Elapsed;
        await nodes.Cluster.KillSiloAsync(nodes.Cluster.Silos[victim]);

        var results = await Task.WhenAll(jobs.Select(j => j.Run)).WaitAsync(TimeSpan.FromSeconds(60));
        var failed = results.Where(r => r.Error is not null).ToList();
        // exactly the victim's jobs failed, each with a clean NodeUnavailableException, within seconds of the kill
        Assert.True(onVictim == failed.Count, $"{onVictim} jobs on the lost node, {failed.Count} failed: " +
            string.Join("; ", results.Select(r => $"{r.Tokens} tokens {r.Error?.GetType().Name} {r.Error?.Message} at {r.At}")));
        Assert.All(failed, f => Assert.IsType<NodeUnavailableException>(f.Error));
        Assert.All(failed, f => Assert.True(f.At - killed < TimeSpan.FromSeconds(15), $"failed {f.At - killed} after the kill"));
        Assert.All(results.Where(r => r.Error is null), r => Assert.Equal(1000, r.Tokens));

        // membership shows the loss; new jobs go to the living nodes
        await InProcessNodes.WaitUntil(() => nodes.Directory(0).Candidates().All(m => !m.Silo.Equals(victimAddress))
                                              && nodes.Directory(1).Candidates().All(m => !m.Silo.Equals(victimAddress)), "the survivors stop routing to the lost node", 15_000);
        for (int k = 0; k < 4; k++)
        {
            int[] prompt = nodes.Prompt([ChatMessage.User($"A question after the loss, number {k}, long enough to be placed.")]);
            var (_, usage) = await nodes.RunAsync(k % 2, prompt, maxTokens: 4);
            Assert.Equal(prompt.Length, usage.PromptTokens);
        }

        // a node that joins takes work
        var joined = await nodes.Cluster.StartAdditionalSiloAsync();
        await InProcessNodes.WaitUntil(() => nodes.Directory(0).Candidates().Any(m => m.Silo.Equals(joined.SiloAddress) && m.Load is not null), "the new node is routed to", 30_000);
        int newIndex = nodes.IndexOf(joined.SiloAddress);
        for (int k = 0; k < 8 && nodes.Engine(newIndex).Status().Jobs == 0; k++)
            await nodes.RunAsync(0, nodes.Prompt([ChatMessage.User($"A question for the newcomer, number {k}, long enough to be placed.")]), maxTokens: 2);
        Assert.True(nodes.Engine(newIndex).Status().Jobs > 0);
    }

    private static async Task<(int Tokens, Exception? Error, TimeSpan At)> Drain(IAsyncEnumerable<JobChunk> stream, Stopwatch clock)
    {
        int tokens = 0;
        try
        {
            await foreach (var c in stream) tokens += c.Chunk.Tokens;
            return (tokens, null, clock.Elapsed);
        }
        catch (Exception e)
        {
            return (tokens, e, clock.Elapsed);
        }
    }
}
