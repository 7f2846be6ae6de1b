// The serving layer over a backend other than its own scheduler (what a cluster node plugs in): a job's steering
// travels as data and its reasoning count comes back, and a node lost before or during a job ends the request
// with a 503 or an SSE error event carrying an OpenAI error object, never a hang or a dropped connection.
using System.Runtime.CompilerServices;
using System.Text.Json;
using R1Sharp.Engine;

namespace R1Sharp.Server.Tests;

public sealed class BackendTests
{
    private const string Chat = "/v1/chat/completions";

    /// <summary>Runs jobs on the scheduler, but loses the "node" after <paramref name="chunksBeforeLoss"/> chunks (or at submission when 0).</summary>
    private sealed class LosingBackend(Scheduler scheduler, int chunksBeforeLoss) : IGenerationBackend
    {
        public readonly List<GenerationJob> Jobs = [];

        public ValueTask<IAsyncEnumerable<JobChunk>> SubmitAsync(GenerationJob job, CancellationToken ct)
        {
            lock (Jobs) Jobs.Add(job);
            if (chunksBeforeLoss == 0) throw new NodeUnavailableException("node b cannot be reached");
            return new(Cut(LocalBackend.Run(scheduler, job, ct), ct));
        }

        private async IAsyncEnumerable<JobChunk> Cut(IAsyncEnumerable<JobChunk> chunks, [EnumeratorCancellation] CancellationToken ct)
        {
            int n = 0;
            await foreach (var c in chunks.WithCancellation(ct))
            {
                if (chunksBeforeLoss > 0 && ++n > chunksBeforeLoss) throw new NodeUnavailableException("the node running this request (b) was lost");
                yield return c;
            }
        }
    }

    private static async Task<(ServerHarness, LosingBackend)> Start(int chunksBeforeLoss)
    {
        LosingBackend? backend = null;
        var h = await ServerHarness.StartAsync(hooks: new ServerHooks
        {
            Backend = (_, ctx) => backend = new LosingBackend(ctx.Scheduler, chunksBeforeLoss),
        });
        return (h, backend!);
    }

    private static string Request(bool stream, int max = 40) =>
        $$"""{"messages":[{"role":"user","content":"Hello"}],"max_tokens":{{max}},"temperature":0,"ignore_eos":true,"reasoning_budget":3,"stream":{{(stream ? "true" : "false")}}}""";

    [Fact]
    public async Task JobsCarryTheirSteeringAsDataAndReasoningTokensComeBack()
    {
        var (h, backend) = await Start(chunksBeforeLoss: -1);
        await using var _ = h;
        var (status, body) = await h.PostJsonAsync(Chat, Request(stream: false, max: 12));
        Assert.Equal(200, status);
        var job = Assert.Single(backend.Jobs);
        Assert.Null(job.Request.Steer);
        Assert.Equal(3, job.Reasoning!.Budget);
        Assert.True(job.Reasoning.StartsInReasoning);
        // the budget of 3 closes the think block: 3 reasoning tokens and the forced closing ones
        int reasoning = body.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32();
        Assert.InRange(reasoning, 4, 12);
    }

    [Fact]
    public async Task JobsCarryTheirAnswerFormatAsDataAndTheBackendBuildsTheConstraint()
    {
        var (h, backend) = await Start(chunksBeforeLoss: -1);
        await using var _ = h;
        const string format = ""","response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}}}""";
        var (status, body) = await h.PostJsonAsync(Chat,
            $$"""{"messages":[{"role":"user","content":"Hello"}],"max_tokens":300,"temperature":1,"seed":1,"reasoning_budget":3{{format}}}""");
        Assert.Equal(200, status);
        var job = Assert.Single(backend.Jobs);
        Assert.Null(job.Request.Constraint);
        Assert.Equal(R1Sharp.Chat.AnswerFormatKind.JsonSchema, job.Answer!.Format!.Kind);
        Assert.True(job.Answer.StartsInReasoning);
        // built by the backend from the job's answer format: the answer follows the schema
        string content = body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        using var answer = JsonDocument.Parse(content);
        Assert.Equal(JsonValueKind.Number, Assert.Single(answer.RootElement.EnumerateObject(), p => p.Name == "n").Value.ValueKind);
        Assert.Single(answer.RootElement.EnumerateObject());

        // no format asked for: none travels
        (status, body) = await h.PostJsonAsync(Chat, Request(stream: false, max: 4));
        Assert.Equal(200, status);
        Assert.Null(backend.Jobs[1].Answer);
        // a live constraint on a job is refused: it could not travel to another node
        Assert.Throws<ArgumentException>(() => LocalBackend.Run(h.Scheduler,
            new GenerationJob(new EngineRequest { Prompt = [1], MaxTokens = 1, Constraint = job.Answer.Plan(h.Model.Tokenizer)!() }), default));
    }

    [Fact]
    public async Task ANodeLostBeforeTheJobStartsIsA503()
    {
        var (h, _) = await Start(chunksBeforeLoss: 0);
        await using var __ = h;
        var (status, body) = await h.PostJsonAsync(Chat, Request(stream: true));
        Assert.Equal(503, status);
        Assert.Equal("node_unavailable", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("server_error", body.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task ANodeLostMidwayIsA503WhenNothingWasSent()
    {
        var (h, _) = await Start(chunksBeforeLoss: 3);
        await using var __ = h;
        var (status, body) = await h.PostJsonAsync(Chat, Request(stream: false));
        Assert.Equal(503, status);
        Assert.Contains("was lost", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task ANodeLostMidStreamEndsTheStreamWithAnErrorEvent()
    {
        var (h, _) = await Start(chunksBeforeLoss: 3);
        await using var __ = h;
        using var r = await h.PostAsync(Chat, Request(stream: true));
        Assert.Equal(200, (int)r.StatusCode);
        var events = await ServerHarness.ReadEventsAsync(r); // up to [DONE]: the stream is closed, not left hanging
        var error = events[^1].GetProperty("error");
        Assert.Equal("node_unavailable", error.GetProperty("code").GetString());
        Assert.Contains(events, e => e.TryGetProperty("choices", out var c) && c.GetArrayLength() > 0);
        Assert.DoesNotContain(events, e => e.TryGetProperty("choices", out var c) && c.GetArrayLength() > 0
                                           && c[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String);
    }
}
