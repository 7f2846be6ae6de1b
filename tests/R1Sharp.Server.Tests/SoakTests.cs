// The soak and chaos run's CI setting (bench/R1Sharp.Soak; docs/reliability.md has the manual setting and its
// record): `serve` in its own process on the default model, 32 clients against 4 slots and a queue of 8, hundreds of
// requests of every kind in bursts, each answer checked, then the server's health, counters and memory.
using R1Sharp.Soak;
using Xunit.Abstractions;

namespace R1Sharp.Server.Tests;

public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ServeHoldsUpUnderTheCiSoak()
    {
        string model = Directory.GetFiles(RepoPaths.Get("models"), "*.gguf").OrderBy(p => p).First();
        var result = await SoakRunner.RunAsync(new SoakOptions
        {
            Model = model,
            Requests = 480,
            Bursts = 4,
            WarmUp = 240,
            Clients = 32,
            Slots = 4,
            MaxQueue = 8,
            Threads = 1,
            Deadline = TimeSpan.FromSeconds(90),
            Progress = output.WriteLine,
        });
        string report = SoakReport.Format(result);
        output.WriteLine(report);
        Assert.True(result.Passed, report);
        // the mix reached every corner: answers whole and streamed, refusals under load, dropped clients, hostile bodies
        foreach (var outcome in new[] { "200", "200 stream", "429", "400", "413", "dropped before the first byte", "200, dropped mid-stream" })
            Assert.True(result.Outcomes.GetValueOrDefault(outcome) > 0, $"no request ended '{outcome}'\n{report}");
    }
}
