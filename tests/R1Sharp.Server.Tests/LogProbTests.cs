// logprobs on both endpoints, held to a second copy of the model run token by token outside the server: each
// reported figure is the log-softmax of that copy's logits at the request's temperature (1 when greedy), the
// alternatives are its most likely tokens, a grammar's mask renormalizes the distribution, and chat splits the tokens
// between the reasoning and the answer.
using System.Text;
using System.Text.Json;
using R1Sharp.Engine;

namespace R1Sharp.Server.Tests;

public sealed class LogProbTests
{
    private const string Chat = "/v1/chat/completions", Completions = "/v1/completions";

    /// <summary>log-softmax of <paramref name="logits"/> / <paramref name="temperature"/>, in double.</summary>
    private static double[] LogSoftmax(ReadOnlySpan<float> logits, double temperature)
    {
        var l = new double[logits.Length];
        double max = double.NegativeInfinity;
        for (int i = 0; i < l.Length; i++) { l[i] = logits[i] / temperature; max = Math.Max(max, l[i]); }
        double sum = 0;
        foreach (double v in l) sum += Math.Exp(v - max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < l.Length; i++) l[i] -= lse;
        return l;
    }

    private static List<float> Floats(JsonElement a) => a.EnumerateArray().Select(e => e.GetSingle()).ToList();

    [Theory]
    [InlineData(0.0, 5)]
    [InlineData(1.5, 3)]
    public async Task CompletionLogprobsAreTheModelsLogSoftmaxAtTheTemperature(double temperature, int top)
    {
        await using var h = await ServerHarness.StartAsync();
        int[] prompt = [1, 5, 9, 14, 30];
        var (status, body) = await h.PostJsonAsync(Completions,
            $$"""{"prompt":[{{string.Join(",", prompt)}}],"max_tokens":12,"temperature":{{temperature}},"top_p":0.9,"seed":3,"logprobs":{{top}},"ignore_eos":true}""");
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        var lp = choice.GetProperty("logprobs");
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()!).ToList();
        var logprobs = Floats(lp.GetProperty("token_logprobs"));
        var tops = lp.GetProperty("top_logprobs").EnumerateArray().ToList();
        var offsets = lp.GetProperty("text_offset").EnumerateArray().Select(e => e.GetInt32()).ToList();
        Assert.Equal(12, tokens.Count);
        Assert.Equal(12, logprobs.Count);
        Assert.Equal(12, tops.Count);
        Assert.Equal(0, offsets[0]);

        // the oracle: another copy of the model, one token at a time
        using var model = LoadedModel.Load(ServerHarness.ModelPath, threads: 1);
        using var session = new InferenceSession(model.Model, 64);
        var tok = model.Tokenizer;
        var logits = session.Evaluate(prompt).ToArray();
        double t = temperature == 0 ? 1 : temperature;
        for (int k = 0; k < tokens.Count; k++)
        {
            var expected = LogSoftmax(logits, t);
            // the token the server drew: the one with the reported text and figure (greedy: the most likely)
            var ids = Enumerable.Range(0, expected.Length).Where(i => LogProbsText(tok, i) == tokens[k]).ToList();
            Assert.NotEmpty(ids);
            int id = ids.MinBy(i => Math.Abs(expected[i] - logprobs[k]));
            Assert.True(Math.Abs(expected[id] - logprobs[k]) < 1e-3, $"token {k} '{tokens[k]}': reported {logprobs[k]}, oracle {expected[id]}");
            if (temperature == 0) Assert.Equal(expected.Max(), expected[id], 1e-9);
            var best = Enumerable.Range(0, expected.Length).OrderByDescending(i => expected[i]).Take(top).ToList();
            var reported = tops[k].EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetSingle());
            Assert.True(reported.Count <= top && reported.Count >= top - 1, $"token {k}: {reported.Count} alternatives"); // two tokens of one text share a key
            foreach (int b in best)
                if (reported.TryGetValue(LogProbsText(tok, b), out float v))
                    Assert.True(Math.Abs(v - expected[b]) < 1e-3 || v > expected[b], $"token {k}: alternative '{LogProbsText(tok, b)}' {v} vs {expected[b]}");
                else
                    Assert.Fail($"token {k}: the most likely '{LogProbsText(tok, b)}' ({expected[b]}) is missing");
            logits = session.Evaluate([id]).ToArray();
        }
        // offsets walk the text
        string text = choice.GetProperty("text").GetString()!;
        Assert.True(offsets.SequenceEqual(offsets.Order()) && offsets[^1] <= text.Length);
    }

    private static string LogProbsText(Tokenization.BpeTokenizer tok, int id) => Encoding.UTF8.GetString(tok.TokenBytes(id));

    [Fact]
    public async Task AGrammarsMaskRenormalizesTheDistributionAndStreamingGivesTheSameFigures()
    {
        await using var h = await ServerHarness.StartAsync();
        const string Body = """{"prompt":"Answer:","max_tokens":8,"temperature":1,"seed":5,"logprobs":20,"grammar":"root ::= (\"yes\" | \"no\") \".\""}""";
        var (status, body) = await h.PostJsonAsync(Completions, Body);
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        string text = choice.GetProperty("text").GetString()!;
        Assert.True(text is "yes." or "no.", text);
        var lp = choice.GetProperty("logprobs");
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(e => e.GetString()!).ToList();
        var tops = lp.GetProperty("top_logprobs").EnumerateArray().ToList();
        string sofar = "";
        for (int k = 0; k < tokens.Count; k++)
        {
            var alts = tops[k].EnumerateObject().ToList();
            // only what the grammar allows has a probability, and it is all of it
            foreach (var a in alts)
                Assert.True("yes.".StartsWith(sofar + a.Name, StringComparison.Ordinal) || "no.".StartsWith(sofar + a.Name, StringComparison.Ordinal),
                    $"position {k} after '{sofar}': '{a.Name}' has a probability");
            double mass = alts.Sum(a => Math.Exp(a.Value.GetDouble()));
            Assert.True(mass <= 1 + 1e-4, $"position {k}: {mass}");
            if (alts.Count < 20) Assert.True(Math.Abs(mass - 1) < 1e-4, $"position {k}: the {alts.Count} allowed tokens hold {mass}");
            sofar += tokens[k];
        }
        Assert.Equal(text, sofar);

        using var r = await h.PostAsync(Completions, Body.Replace("\"seed\":5", "\"seed\":5,\"stream\":true"));
        var streamed = (await ServerHarness.ReadEventsAsync(r))
            .SelectMany(e => e.GetProperty("choices").EnumerateArray())
            .Where(c => c.GetProperty("logprobs").ValueKind == JsonValueKind.Object)
            .SelectMany(c => Floats(c.GetProperty("logprobs").GetProperty("token_logprobs"))).ToList();
        Assert.Equal(Floats(lp.GetProperty("token_logprobs")), streamed);
    }

    [Fact]
    public async Task ChatSplitsReasoningAndAnswerTokensStreamedOrWhole()
    {
        await using var h = await ServerHarness.StartAsync();
        const string Body = """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":20,"temperature":0,"reasoning_budget":5,"logprobs":true,"top_logprobs":2,"ignore_eos":true}""";
        var (status, body) = await h.PostJsonAsync(Chat, Body);
        Assert.Equal(200, status);
        var choice = body.GetProperty("choices")[0];
        var lp = choice.GetProperty("logprobs");
        var reasoning = lp.GetProperty("reasoning_content").EnumerateArray().ToList();
        var content = lp.GetProperty("content").EnumerateArray().ToList();
        var usage = body.GetProperty("usage");
        Assert.Equal(usage.GetProperty("completion_tokens").GetInt32(), reasoning.Count + content.Count);
        Assert.Equal(usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32(), reasoning.Count);
        Assert.Contains("</think>", string.Concat(reasoning.Select(e => e.GetProperty("token").GetString())));
        foreach (var e in reasoning.Concat(content))
        {
            var top = e.GetProperty("top_logprobs").EnumerateArray().ToList();
            var bytes = e.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray();
            Assert.Equal(Encoding.UTF8.GetString(bytes), e.GetProperty("token").GetString());
            if (e.GetProperty("logprob").GetSingle() == 0 && top.Count == 0) continue; // a token the budget forced
            // greedy: the token is the most likely one
            Assert.Equal(2, top.Count);
            Assert.Equal(top[0].GetProperty("logprob").GetSingle(), e.GetProperty("logprob").GetSingle());
            Assert.True(top[0].GetProperty("logprob").GetSingle() >= top[1].GetProperty("logprob").GetSingle());
        }
        // the answer's tokens make the answer (the whitespace after </think>, which the answer drops, aside)
        var answer = content.SelectMany(e => e.GetProperty("bytes").EnumerateArray().Select(b => (byte)b.GetInt32())).ToArray();
        Assert.Equal(choice.GetProperty("message").GetProperty("content").GetString(), Encoding.UTF8.GetString(answer).TrimStart(' ', '\t', '\n', '\r'));

        using var r = await h.PostAsync(Chat, Body.Replace("\"ignore_eos\":true", "\"ignore_eos\":true,\"stream\":true"));
        List<string> sr = [], sc = [];
        foreach (var ev in await ServerHarness.ReadEventsAsync(r))
            foreach (var c in ev.GetProperty("choices").EnumerateArray())
                if (c.GetProperty("logprobs") is { ValueKind: JsonValueKind.Object } l)
                {
                    if (l.TryGetProperty("reasoning_content", out var rc)) sr.AddRange(rc.EnumerateArray().Select(e => e.GetRawText()));
                    sc.AddRange(l.GetProperty("content").EnumerateArray().Select(e => e.GetRawText()));
                }
        Assert.Equal(reasoning.Select(e => e.GetRawText()), sr);
        Assert.Equal(content.Select(e => e.GetRawText()), sc);
    }

    [Fact]
    public async Task SpeculationReportsTheSameFigures()
    {
        // a draft of the target itself: drafted tokens are verified, and the figures are the target's
        const string Body = """{"prompt":[1,5,9,14,30],"max_tokens":24,"temperature":0,"logprobs":3,"ignore_eos":true}""";
        JsonElement plain, speculated;
        await using (var h = await ServerHarness.StartAsync())
            plain = (await h.PostJsonAsync(Completions, Body)).Body.GetProperty("choices")[0].GetProperty("logprobs");
        await using (var h = await ServerHarness.StartAsync(o => o with { DraftModelPath = ServerHarness.ModelPath, DraftPMin = 0 }))
        {
            speculated = (await h.PostJsonAsync(Completions, Body)).Body.GetProperty("choices")[0].GetProperty("logprobs");
            Assert.True(h.Scheduler.DraftTokens > 0, "nothing was drafted");
        }
        Assert.Equal(plain.GetProperty("tokens").GetRawText(), speculated.GetProperty("tokens").GetRawText());
        var a = Floats(plain.GetProperty("token_logprobs"));
        var b = Floats(speculated.GetProperty("token_logprobs"));
        Assert.Equal(a.Count, b.Count);
        for (int k = 0; k < a.Count; k++) Assert.True(Math.Abs(a[k] - b[k]) < 1e-3, $"token {k}: {a[k]} without speculation, {b[k]} with");
    }

    [Theory]
    [InlineData(Chat, "\"top_logprobs\":3", "top_logprobs")]
    [InlineData(Chat, "\"logprobs\":true,\"top_logprobs\":21", "top_logprobs")]
    [InlineData(Completions, "\"logprobs\":21", "logprobs")]
    [InlineData(Completions, "\"logprobs\":-1", "logprobs")]
    public async Task OutOfRangeLogprobsAre400(string path, string extra, string param)
    {
        await using var h = await ServerHarness.StartAsync();
        string body = path == Chat ? $$"""{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2,{{extra}}}""" : $$"""{"prompt":"Hi","max_tokens":2,{{extra}}}""";
        var (status, json) = await h.PostJsonAsync(path, body);
        Assert.Equal(400, status);
        Assert.Equal(param, json.GetProperty("error").GetProperty("param").GetString());
    }
}
