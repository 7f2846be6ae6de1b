// What travels between nodes (Orleans-serialized): a job as data, the chunks of its output, each node's identity
// and load, and the routes nodes share. Conversions to and from the engine's own types live here, in one place:
// a field added to EngineRequest, SamplingParams or the answer's format must be given a wire form here (WireTests
// holds them together).
using System.Text.Json;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Server;

namespace R1Sharp.Cluster;

[GenerateSerializer, Immutable, Alias("r1.job")]
public sealed record WireJob(
    [property: Id(0)] int[] Prompt,
    [property: Id(1)] int MaxTokens,
    [property: Id(2)] string[] StopStrings,
    [property: Id(3)] bool IgnoreEos,
    [property: Id(4)] float Temperature,
    [property: Id(5)] int TopK,
    [property: Id(6)] float TopP,
    [property: Id(7)] float MinP,
    [property: Id(8)] float RepetitionPenalty,
    [property: Id(9)] float PresencePenalty,
    [property: Id(10)] float FrequencyPenalty,
    [property: Id(11)] int RepeatLastN,
    [property: Id(12)] ulong Seed,
    [property: Id(13)] bool HasReasoning,
    [property: Id(14)] bool StartsInReasoning,
    [property: Id(15)] int ReasoningBudget,
    [property: Id(16)] int[] ReasoningCloseTokens,
    [property: Id(17)] WireAnswer? Answer = null,
    [property: Id(18)] int LogProbs = -1)
{
    public static WireJob From(GenerationJob job)
    {
        var r = job.Request;
        if (r.Steer is not null || r.Constraint is not null)
            throw new ArgumentException("a job to forward describes its steering and answer format as data, not as live objects");
        var s = r.Sampling;
        var rs = job.Reasoning;
        return new WireJob(r.Prompt, r.MaxTokens, [.. r.StopStrings], r.IgnoreEos,
            s.Temperature, s.TopK, s.TopP, s.MinP, s.RepetitionPenalty, s.PresencePenalty, s.FrequencyPenalty, s.RepeatLastN, s.Seed,
            rs is not null, rs?.StartsInReasoning ?? false, rs?.Budget ?? -1, rs?.CloseTokens ?? [],
            job.Answer is { } a ? WireAnswer.From(a) : null, r.LogProbs ?? -1);
    }

    public GenerationJob ToJob() => new(
        new EngineRequest
        {
            Prompt = Prompt,
            MaxTokens = MaxTokens,
            StopStrings = StopStrings,
            IgnoreEos = IgnoreEos,
            LogProbs = LogProbs < 0 ? null : LogProbs,
            Sampling = new SamplingParams
            {
                Temperature = Temperature, TopK = TopK, TopP = TopP, MinP = MinP, RepetitionPenalty = RepetitionPenalty,
                PresencePenalty = PresencePenalty, FrequencyPenalty = FrequencyPenalty, RepeatLastN = RepeatLastN, Seed = Seed,
            },
        },
        HasReasoning ? new ReasoningSteer(StartsInReasoning, ReasoningBudget, ReasoningCloseTokens) : null,
        Answer?.ToSpec());
}

/// <summary>
/// The answer's format as it travels (<see cref="AnswerSpec"/>): what the node running the job compiles into a
/// grammar constraint over its own vocabulary. Enums travel as their numbers, JSON (schemas, tools) as text;
/// <paramref name="FormatKind"/> is -1 when no response format or grammar was asked for.
/// </summary>
[GenerateSerializer, Immutable, Alias("r1.answer")]
public sealed record WireAnswer(
    [property: Id(0)] int Template,
    [property: Id(1)] bool StartsInReasoning,
    [property: Id(2)] WireTool[] Tools,
    [property: Id(3)] int ChoiceMode,
    [property: Id(4)] string? ChoiceFunction,
    [property: Id(5)] bool ParallelCalls,
    [property: Id(6)] int FormatKind,
    [property: Id(7)] string FormatText,
    [property: Id(8)] bool FormatStrict)
{
    public static WireAnswer From(AnswerSpec a) => new((int)a.Template, a.StartsInReasoning, [.. a.Tools.Select(WireTool.From)],
        (int)a.Choice.Mode, a.Choice.FunctionName, a.ParallelCalls,
        a.Format is { } f ? (int)f.Kind : -1, a.Format?.Text ?? "", a.Format?.Strict ?? false);

    public AnswerSpec ToSpec() => new((ChatTemplateKind)Template, StartsInReasoning, [.. Tools.Select(t => t.ToDefinition())],
        new ToolChoice((ToolChoiceMode)ChoiceMode, ChoiceFunction), ParallelCalls,
        FormatKind < 0 ? null : new AnswerFormat((AnswerFormatKind)FormatKind, FormatText, FormatStrict));
}

/// <summary>A tool as it travels: its parameters' schema and its function object as JSON text.</summary>
[GenerateSerializer, Immutable, Alias("r1.tool")]
public sealed record WireTool(
    [property: Id(0)] string Name,
    [property: Id(1)] string? Description,
    [property: Id(2)] string Parameters,
    [property: Id(3)] bool Strict,
    [property: Id(4)] string Function)
{
    public static WireTool From(ToolDefinition t) => new(t.Name, t.Description, t.Parameters.GetRawText(), t.Strict, t.Function.GetRawText());

    public ToolDefinition ToDefinition() => new(Name, Description, Json(Parameters), Strict, Json(Function));

    private static JsonElement Json(string text)
    {
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.Clone();
    }
}

/// <summary>How the engine's node answered a job: accepted, or refused as its own Submit would have thrown.</summary>
public enum Admission { Accepted, QueueFull, ShuttingDown, Invalid }

/// <summary>
/// One chunk of a forwarded job. The first chunk of every stream is the admission (no text); then the engine's
/// chunks, the last with the finish reason (-1: none yet), token counts and reasoning tokens.
/// </summary>
[GenerateSerializer, Immutable, Alias("r1.chunk")]
public readonly record struct WireChunk(
    [property: Id(0)] string Text,
    [property: Id(1)] int Tokens,
    [property: Id(2)] int Finish,
    [property: Id(3)] int PromptTokens,
    [property: Id(4)] int CachedPromptTokens,
    [property: Id(5)] int CompletionTokens,
    [property: Id(6)] int ReasoningTokens,
    [property: Id(7)] Admission Admission = Admission.Accepted,
    [property: Id(8)] string? Refusal = null,
    [property: Id(9)] bool IsAdmission = false,
    [property: Id(10)] WireToken[]? LogProbs = null)
{
    public static WireChunk Admitted => new("", 0, -1, 0, 0, 0, 0, IsAdmission: true);

    public static WireChunk Refused(Admission why, string message) => new("", 0, -1, 0, 0, 0, 0, why, message, IsAdmission: true);

    public static WireChunk From(JobChunk j)
    {
        var c = j.Chunk;
        var u = c.Usage;
        return new WireChunk(c.Text, c.Tokens, c.Finish is FinishReason f ? (int)f : -1,
            u?.PromptTokens ?? 0, u?.CachedPromptTokens ?? 0, u?.CompletionTokens ?? 0, j.ReasoningTokens,
            LogProbs: c.LogProbs is { } lp ? [.. lp.Select(WireToken.From)] : null);
    }

    public JobChunk ToChunk()
    {
        var logProbs = LogProbs?.Select(t => t.ToToken()).ToList();
        return Finish < 0
            ? new JobChunk(new GenerationChunk(Text, Tokens) { LogProbs = logProbs })
            : new JobChunk(new GenerationChunk(Text, Tokens, (FinishReason)Finish, new GenerationUsage(PromptTokens, CachedPromptTokens, CompletionTokens)) { LogProbs = logProbs }, ReasoningTokens);
    }

    /// <summary>The exception the refused job's Submit would have thrown on the engine's own node.</summary>
    public Exception RefusalException() => Admission switch
    {
        Admission.QueueFull => new QueueFullException(Refusal ?? "the queue is full"),
        Admission.ShuttingDown => new InvalidOperationException(Refusal ?? "the node is shutting down"),
        _ => new ArgumentException(Refusal ?? "the request was refused"),
    };
}

/// <summary>A generated token with its log probability and the most likely alternatives (<see cref="GeneratedToken"/>).</summary>
[GenerateSerializer, Immutable, Alias("r1.token")]
public sealed record WireToken(
    [property: Id(0)] int Token,
    [property: Id(1)] string Text,
    [property: Id(2)] float LogProb,
    [property: Id(3)] int[] TopTokens,
    [property: Id(4)] float[] TopLogProbs)
{
    public static WireToken From(GeneratedToken t) =>
        new(t.Token, t.Text, t.LogProb, [.. t.Top.Select(a => a.Token)], [.. t.Top.Select(a => a.LogProb)]);

    public GeneratedToken ToToken() => new(Token, Text, LogProb, [.. TopTokens.Zip(TopLogProbs, (id, lp) => new TokenLogProb(id, lp))]);
}

/// <summary>What a node serves; nodes join one cluster only when every field but the name and address agrees.</summary>
[GenerateSerializer, Immutable, Alias("r1.identity")]
public sealed record NodeIdentity(
    [property: Id(0)] string Name,
    [property: Id(1)] string HttpAddress,
    [property: Id(2)] string ModelId,
    [property: Id(3)] long ModelFileSize,
    [property: Id(4)] string MetadataHash,
    [property: Id(5)] int ContextSize,
    [property: Id(6)] int Slots)
{
    /// <summary>Null when <paramref name="other"/> serves the same model at the same context; else why not, in one line.</summary>
    public string? Mismatch(NodeIdentity other)
    {
        if (ModelFileSize != other.ModelFileSize || MetadataHash != other.MetadataHash)
            return $"node '{other.Name}' serves a different model file ({other.ModelFileSize} bytes, hash {other.MetadataHash[..12]}) " +
                   $"than node '{Name}' ({ModelFileSize} bytes, hash {MetadataHash[..12]})";
        if (ModelId != other.ModelId) return $"node '{other.Name}' serves the model as '{other.ModelId}', node '{Name}' as '{ModelId}' (--model-name)";
        if (ContextSize != other.ContextSize) return $"node '{other.Name}' has a context of {other.ContextSize} tokens, node '{Name}' {ContextSize} (--ctx)";
        return null;
    }
}

/// <summary>A node's load and cache figures (polled by every node for routing and /v1/cluster).</summary>
[GenerateSerializer, Immutable, Alias("r1.status")]
public sealed record NodeStatus(
    [property: Id(0)] int Slots,
    [property: Id(1)] int Running,
    [property: Id(2)] int Queued,
    [property: Id(3)] bool Accepting,
    [property: Id(4)] long Jobs,
    [property: Id(5)] long ForwardedJobs,
    [property: Id(6)] long PromptTokens,
    [property: Id(7)] long CachedPromptTokens,
    [property: Id(8)] string HttpAddress);

/// <summary>One routing decision, as other nodes learn it: <paramref name="Prompt"/> went to <paramref name="Node"/>.</summary>
[GenerateSerializer, Immutable, Alias("r1.route")]
public sealed record RouteRecord(
    [property: Id(0)] SiloAddress Node,
    [property: Id(1)] int[] Prompt);
