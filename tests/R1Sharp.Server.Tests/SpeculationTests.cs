// The server with speculative decoding (a server option, no request field): eight concurrent greedy requests, some
// ended by stop strings, give what a server without it gives; /metrics counts the draft tokens and the accepted ones.
using System.Text.Json;

namespace R1Sharp.Server.Tests;

public sealed class SpeculationTests
{
    private const string Chat = "/v1/chat/completions";

    private static string Request(int i, string? stop = null) =>
        $$"""{"messages":[{"role":"user","content":"Item {{i}}: {{string.Concat(Enumerable.Repeat("red green blue ", i % 3 + 1))}}"}],"max_tokens":40,"temperature":0{{(stop is null ? "" : $",\"stop\":[{JsonSerializer.Serialize(stop)}]")}}}""";

    private static async Task<List<(string, int, string)>> EightTogether(ServerHarness h, Func<int, string> request)
    {
        h.Scheduler.Pause();
        var tasks = Enumerable.Range(0, 8).Select(i => h.PostJsonAsync(Chat, request(i))).ToArray();
        await ServerHarness.WaitUntil(() => h.Scheduler.Queued == 8, "eight requests are queued");
        h.Scheduler.Resume();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(200, r.Status));
        return results.Select(r => ServerHarness.ChatSummary(r.Body)).ToList();
    }

    /// <summary>A tiny deepseek2 file with one MTP layer, for --spec mtp.</summary>
    private static readonly Lazy<string> s_mtpModel = new(() =>
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-server-mtp-").FullName;
        string path = Path.Combine(dir, "tiny-mtp.gguf");
        Models.Synthesizer.Write(Models.Synthesizer.FindPreset("deepseek2", "tiny-mtp"), Tensors.GgmlType.F32, 7, path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return path;
    });

    [Theory]
    [InlineData("draft")]
    [InlineData("ngram")]
    [InlineData("mtp")]
    public async Task EightConcurrentGreedyRequestsAreTheSameWithSpeculation(string kind)
    {
        string model = kind == "mtp" ? s_mtpModel.Value : ServerHarness.ModelPath;
        List<(string, int, string)> plain;
        string[] stops = new string[8];
        await using (var h = await ServerHarness.StartAsync(o => o with { ModelPath = model, Parallel = 8 }))
        {
            plain = await EightTogether(h, i => Request(i));
            // stop strings from the middle of some outputs: they end inside what a draft would have covered
            for (int i = 0; i < 8; i += 2)
            {
                string text = plain[i].Item1;
                if (text.Length > 12) stops[i] = text.Substring(text.Length / 2, 2).Replace("|", "");
            }
            plain = await EightTogether(h, i => Request(i, stops[i]));
        }
        Assert.Contains(plain, p => p.Item3 == "stop");

        await using var s = await ServerHarness.StartAsync(o => o with
        {
            ModelPath = model,
            Parallel = 8,
            DraftModelPath = kind == "draft" ? model : null,
            Speculation = kind == "draft" ? null : kind,
            DraftPMin = 0,
        });
        var spec = await EightTogether(s, i => Request(i, stops[i]));
        Assert.Equal(plain, spec);

        string metrics = await s.MetricsAsync();
        double drafted = Counter(metrics, "r1sharp_draft_tokens_total"), accepted = Counter(metrics, "r1sharp_draft_accepted_tokens_total");
        Assert.True(drafted > 0, metrics);
        Assert.InRange(accepted, kind == "draft" ? 0.9 * drafted : 0, drafted);
    }

    // a grammar-constrained answer (response_format json_schema) at temperature 1 with speculation: each row is
    // verified by the constrained draw, so every answer is valid; with n-gram drafts (chosen without randomness) the
    // reasoning and the answer are the very same as without speculation, seed for seed
    [Theory]
    [InlineData("draft")]
    [InlineData("ngram")]
    public async Task ConstrainedAnswersStayValidWithSpeculation(string kind)
    {
        string format = $$$""","response_format":{"type":"json_schema","json_schema":{"name":"person","schema":{{{StructuredOutputTests.Person}}},"strict":true}}""";
        const int Seeds = 6;
        var plain = new List<(string, int, string)>();
        await using (var h = await ServerHarness.StartAsync())
            for (int seed = 0; seed < Seeds; seed++)
            {
                var (status, body) = await h.PostJsonAsync(Chat, StructuredOutputTests.Body(seed, format));
                Assert.Equal(200, status);
                plain.Add(ServerHarness.ChatSummary(body));
            }

        await using var s = await ServerHarness.StartAsync(o => o with
        {
            DraftModelPath = kind == "draft" ? ServerHarness.ModelPath : null,
            Speculation = kind == "draft" ? null : kind,
            DraftPMin = 0,
        });
        for (int seed = 0; seed < Seeds; seed++)
        {
            var (status, body) = await s.PostJsonAsync(Chat, StructuredOutputTests.Body(seed, format));
            Assert.Equal(200, status);
            var choice = body.GetProperty("choices")[0];
            string content = choice.GetProperty("message").GetProperty("content").GetString()!;
            Assert.True(StructuredOutputTests.Valid(StructuredOutputTests.Person, content), $"seed {seed}: {content}");
            Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
            if (kind == "ngram") Assert.Equal(plain[seed], ServerHarness.ChatSummary(body));
        }
        string metrics = await s.MetricsAsync();
        Assert.True(Counter(metrics, "r1sharp_draft_tokens_total") > 0, metrics);
    }

    private static double Counter(string metrics, string name)
    {
        var line = metrics.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
