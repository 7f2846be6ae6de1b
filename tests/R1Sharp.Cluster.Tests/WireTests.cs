// What travels between nodes: a job and its chunks survive the trip field for field, through Orleans' serializer
// too. A field added to EngineRequest, SamplingParams or the answer's format (AnswerSpec and what it holds) fails
// here until Wire.cs gives it a wire form.
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using R1Sharp.Chat;
using R1Sharp.Cluster;
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Server;

namespace R1Sharp.Cluster.Tests;

public sealed class WireTests
{
    private static IEnumerable<string> Fields<T>() => typeof(T).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).Order();

    [Fact]
    public void EveryRequestFieldHasAWireForm()
    {
        // the fields WireJob carries; Steer travels as GenerationJob.Reasoning, Constraint as GenerationJob.Answer
        string[] request = ["Prompt", "Sampling", "MaxTokens", "StopStrings", "IgnoreEos", "Steer", "Constraint", "LogProbs"];
        string[] sampling = ["Temperature", "TopK", "TopP", "MinP", "RepetitionPenalty", "PresencePenalty", "FrequencyPenalty", "RepeatLastN", "Seed"];
        Assert.Equal(request.Order(), Fields<EngineRequest>());
        Assert.Equal(sampling.Order(), Fields<SamplingParams>());
        Assert.Equal(["Answer", "Reasoning", "Request"], Fields<GenerationJob>());
        // the fields WireAnswer and WireTool carry
        Assert.Equal(["Choice", "Format", "ParallelCalls", "StartsInReasoning", "Template", "Tools"], Fields<AnswerSpec>());
        Assert.Equal(["FunctionName", "Mode"], Fields<ToolChoice>());
        Assert.Equal(["Kind", "Strict", "Text"], Fields<AnswerFormat>());
        Assert.Equal(["Description", "Function", "Name", "Parameters", "Strict"], Fields<ToolDefinition>());
    }

    private static ToolDefinition Tool(string json) => ToolDefinition.FromOpenAi(JsonDocument.Parse(json).RootElement);

    private static readonly ToolDefinition[] Tools =
    [
        Tool("""{"type":"function","function":{"name":"get_weather","description":"Weather in a city","strict":true,"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}"""),
        Tool("""{"type":"function","function":{"name":"get_time"}}"""),
    ];

    /// <summary>Every answer format a request can ask for: forced and named tool calls, strict tools in auto, the three response formats.</summary>
    private static readonly AnswerSpec[] AnswerCases =
    [
        new(ChatTemplateKind.R1, true, Tools, ToolChoice.Required, true, null),
        new(ChatTemplateKind.R1, false, Tools, new ToolChoice(ToolChoiceMode.Function, "get_time"), false, null),
        new(ChatTemplateKind.R1, true, Tools, ToolChoice.Auto, true, null),
        new(ChatTemplateKind.R1, true, [], ToolChoice.None, true, new AnswerFormat(AnswerFormatKind.JsonSchema, """{"type":"object","properties":{"a":{"type":"integer"}}}""", Strict: true)),
        new(ChatTemplateKind.R1, true, [], ToolChoice.None, true, AnswerFormat.JsonObject),
        AnswerSpec.Grammar(ChatTemplateKind.R1, """root ::= "yes" | "no" """),
    ];

    public static TheoryData<int> Answers => new(Enumerable.Range(0, AnswerCases.Length));

    private static void AssertSameAnswer(AnswerSpec expected, AnswerSpec actual)
    {
        Assert.Equal(expected.Template, actual.Template);
        Assert.Equal(expected.StartsInReasoning, actual.StartsInReasoning);
        Assert.Equal(expected.Choice, actual.Choice);
        Assert.Equal(expected.ParallelCalls, actual.ParallelCalls);
        Assert.Equal(expected.Format, actual.Format);
        Assert.Equal(expected.Tools.Count, actual.Tools.Count);
        foreach (var (e, a) in expected.Tools.Zip(actual.Tools))
        {
            Assert.Equal((e.Name, e.Description, e.Strict), (a.Name, a.Description, a.Strict));
            Assert.Equal(e.Parameters.GetRawText(), a.Parameters.GetRawText());
            Assert.Equal(e.Function.GetRawText(), a.Function.GetRawText());
        }
    }

    [Theory]
    [MemberData(nameof(Answers))]
    public void AnswerFormatsRoundTripThroughOrleansSerialization(int which)
    {
        var spec = AnswerCases[which];
        var job = new GenerationJob(new EngineRequest { Prompt = [5, 6], MaxTokens = 9 }, new ReasoningSteer(spec.StartsInReasoning, -1, []), spec);
        using var services = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(WireJob).Assembly)).BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer>();
        var back = serializer.Deserialize<WireJob>(serializer.SerializeToArray(WireJob.From(job)))!.ToJob();
        AssertSameAnswer(spec, back.Answer!);
        Assert.Equal(job.Request.Prompt, back.Request.Prompt);
        Assert.Null(WireJob.From(job with { Answer = null }).ToJob().Answer);
    }

    /// <summary>A constraint that allows everything: a live object, as a grammar constraint is.</summary>
    private sealed class Anything : ITokenConstraint
    {
        public bool Active => true;
        public bool IsAllowed(int token) => true;
        public void FillMask(Span<ulong> allowed) => allowed.Fill(ulong.MaxValue);
        public void Accept(int token, string text) { }
    }

    [Fact]
    public void ALiveConstraintIsNotForwarded()
    {
        var job = new GenerationJob(new EngineRequest { Prompt = [1], MaxTokens = 1, Constraint = new Anything() }, Answer: AnswerCases[4]);
        Assert.Throws<ArgumentException>(() => WireJob.From(job));
        // the answer format travels instead, and the node running the job builds its constraint
        Assert.Equal(AnswerCases[4].Format, WireJob.From(job with { Request = job.Request with { Constraint = null } }).ToJob().Answer!.Format);
    }

    [Fact]
    public void AJobRoundTrips()
    {
        var job = new GenerationJob(new EngineRequest
        {
            Prompt = [1, 2, 3],
            MaxTokens = 17,
            StopStrings = ["</s>", "\n\n"],
            IgnoreEos = true,
            LogProbs = 3,
            Sampling = new SamplingParams
            {
                Temperature = 0.3f, TopK = 7, TopP = 0.8f, MinP = 0.05f, RepetitionPenalty = 1.1f, PresencePenalty = 0.5f,
                FrequencyPenalty = -0.25f, RepeatLastN = -1, Seed = 123456789012345,
            },
        }, new ReasoningSteer(true, 5, [9, 8]));
        var back = WireJob.From(job).ToJob();
        Assert.Equal(job.Request.Prompt, back.Request.Prompt);
        Assert.Equal(job.Request.StopStrings, back.Request.StopStrings);
        Assert.Equal(job.Request with { Prompt = back.Request.Prompt, StopStrings = back.Request.StopStrings }, back.Request);
        Assert.Equal(job.Reasoning!.Budget, back.Reasoning!.Budget);
        Assert.Equal(job.Reasoning.CloseTokens, back.Reasoning.CloseTokens);
        Assert.True(back.Reasoning.StartsInReasoning);
        Assert.Null(WireJob.From(job with { Reasoning = null }).ToJob().Reasoning);
        Assert.Throws<ArgumentException>(() => WireJob.From(job with { Request = job.Request with { Steer = (_, _) => null } }));
    }

    [Fact]
    public void ChunksRoundTrip()
    {
        var mid = new JobChunk(new GenerationChunk("abc", 2));
        var last = new JobChunk(new GenerationChunk("", 1, FinishReason.Length, new GenerationUsage(30, 20, 12)), 7);
        Assert.Equal(mid, WireChunk.From(mid).ToChunk());
        Assert.Equal(last, WireChunk.From(last).ToChunk());
        // logprobs travel token by token, through Orleans' serializer too
        var withLp = new JobChunk(new GenerationChunk("ab", 2) { LogProbs = [new GeneratedToken(5, "a", -0.25f, [new(5, -0.25f), new(9, -2f)]), new GeneratedToken(6, "b", 0, [])] });
        using var services = new ServiceCollection().AddSerializer(b => b.AddAssembly(typeof(WireJob).Assembly)).BuildServiceProvider();
        var serializer = services.GetRequiredService<Serializer>();
        var back = serializer.Deserialize<WireChunk>(serializer.SerializeToArray(WireChunk.From(withLp))).ToChunk().Chunk.LogProbs!;
        Assert.Equal(2, back.Count);
        foreach (var (e, a) in withLp.Chunk.LogProbs!.Zip(back))
            Assert.Equal((e.Token, e.Text, e.LogProb, string.Join(",", e.Top)), (a.Token, a.Text, a.LogProb, string.Join(",", a.Top)));
        Assert.Null(WireChunk.From(mid).ToChunk().Chunk.LogProbs);
        Assert.IsType<QueueFullException>(WireChunk.Refused(Admission.QueueFull, "full").RefusalException());
        Assert.IsType<InvalidOperationException>(WireChunk.Refused(Admission.ShuttingDown, "bye").RefusalException());
        Assert.IsType<ArgumentException>(WireChunk.Refused(Admission.Invalid, "bad").RefusalException());
    }

    [Fact]
    public void IdentitiesOfAnotherModelOrContextAreRefused()
    {
        var a = new NodeIdentity("a", "http://a/", "tiny", 1000, new string('1', 64), 2048, 4);
        Assert.Null(a.Mismatch(a with { Name = "b", HttpAddress = "http://b/", Slots = 8 }));
        Assert.Contains("different model file", a.Mismatch(a with { Name = "b", MetadataHash = new string('2', 64) }));
        Assert.Contains("different model file", a.Mismatch(a with { Name = "b", ModelFileSize = 999 }));
        Assert.Contains("--model-name", a.Mismatch(a with { Name = "b", ModelId = "other" }));
        Assert.Contains("--ctx", a.Mismatch(a with { Name = "b", ContextSize = 4096 }));
    }
}
