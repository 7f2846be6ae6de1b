// The seam between the OpenAI protocol handling and the engine that generates: the endpoints parse, validate and
// format; a backend runs each choice's engine request. The default backend is this node's scheduler; a cluster
// backend (R1Sharp.Cluster) routes the request to the node whose KV cache holds the longest prefix of its prompt.
// Everything a job carries is data, so it can travel to another node: steering is described (a reasoning budget),
// never a callback, and the answer's format is described (tools, tool choice, response format, grammar), never a
// constraint, which is a live matcher over one tokenizer's vocabulary: the node that runs the job builds it.
using System.Runtime.CompilerServices;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Tokenization;

namespace R1Sharp.Server;

/// <summary>Where the serving layer sends a choice's generation.</summary>
public interface IGenerationBackend
{
    /// <summary>
    /// Queues <paramref name="job"/> on an engine and returns its output stream once it is accepted. Throws
    /// <see cref="QueueFullException"/> (HTTP 429), <see cref="ArgumentException"/> (400), <see cref="InvalidOperationException"/>
    /// while shutting down (503) and <see cref="NodeUnavailableException"/> (503) when no engine can take it. The stream
    /// throws NodeUnavailableException if the node running the job is lost; cancelling <paramref name="ct"/> ends the job.
    /// </summary>
    ValueTask<IAsyncEnumerable<JobChunk>> SubmitAsync(GenerationJob job, CancellationToken ct);
}

/// <summary>
/// The reasoning steering of a chat choice: whether the output starts inside the think block, and the reasoning
/// budget (-1: unlimited) after which <paramref name="CloseTokens"/> are forced. The engine's node builds the
/// <see cref="ReasoningTracker"/> from it.
/// </summary>
public sealed record ReasoningSteer(bool StartsInReasoning, int Budget, int[] CloseTokens)
{
    public ReasoningTracker CreateTracker() =>
        new(StartsInReasoning, Budget > 0 ? new ThinkingBudget(Budget, CloseTokens) : null);
}

/// <summary>
/// What a choice's answer must look like, as data: the inputs of <see cref="AnswerFormat.Plan"/> (the tools and
/// tool_choice, parallel_tool_calls, response_format or a GBNF grammar). <paramref name="Template"/> gives the syntax
/// of tool calls; <paramref name="StartsInReasoning"/> leaves an opened think block free before the grammar holds.
/// </summary>
public sealed record AnswerSpec(ChatTemplateKind Template, bool StartsInReasoning, IReadOnlyList<ToolDefinition> Tools,
    ToolChoice Choice, bool ParallelCalls, AnswerFormat? Format)
{
    /// <summary>A completion held to a GBNF grammar from its first token.</summary>
    public static AnswerSpec Grammar(ChatTemplateKind template, string gbnf) =>
        new(template, false, [], ToolChoice.None, true, new AnswerFormat(AnswerFormatKind.Gbnf, gbnf));

    /// <summary>
    /// One constraint per call over <paramref name="tokenizer"/>'s vocabulary (the grammar compiled once and cached per
    /// tokenizer), or null when nothing constrains the answer. Throws as <see cref="AnswerFormat.Plan"/> does.
    /// </summary>
    public Func<GrammarConstraint>? Plan(BpeTokenizer tokenizer) =>
        AnswerFormat.Plan(GrammarCache.For(tokenizer), Template, StartsInReasoning, Tools, Choice, ParallelCalls, Format);
}

/// <summary>
/// One choice's engine request (its Steer and Constraint left null) and, for chat, how to steer its reasoning; the
/// answer's format when one is asked for.
/// </summary>
public sealed record GenerationJob(EngineRequest Request, ReasoningSteer? Reasoning = null, AnswerSpec? Answer = null);

/// <summary>An engine chunk, and on the last one the reasoning tokens the job's tracker counted.</summary>
public readonly record struct JobChunk(GenerationChunk Chunk, int ReasoningTokens = 0);

/// <summary>The node that was to run (or was running) a job is gone or unreachable: HTTP 503, or an SSE error event.</summary>
public sealed class NodeUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Runs jobs on this node's scheduler.</summary>
public sealed class LocalBackend(Scheduler scheduler) : IGenerationBackend
{
    public ValueTask<IAsyncEnumerable<JobChunk>> SubmitAsync(GenerationJob job, CancellationToken ct) => new(Run(scheduler, job, ct));

    /// <summary>
    /// Queues the jobs of one API request together, all or none (Scheduler.Submit of a group): every job is checked
    /// before any is queued, and a full queue refuses the group without queueing part of it.
    /// </summary>
    public IAsyncEnumerable<JobChunk>[] SubmitAll(IReadOnlyList<GenerationJob> jobs, CancellationToken ct)
    {
        var trackers = new ReasoningTracker?[jobs.Count];
        var requests = new EngineRequest[jobs.Count];
        for (int i = 0; i < jobs.Count; i++) (requests[i], trackers[i]) = Prepare(scheduler, jobs[i]);
        var chunks = scheduler.Submit(requests, ct);
        return chunks.Select((c, i) => Tag(c, trackers[i], ct)).ToArray();
    }

    /// <summary>
    /// Submits <paramref name="job"/> to <paramref name="scheduler"/> (throwing as Scheduler.Submit does, and
    /// ArgumentException for an answer format that cannot be compiled) and streams its chunks. The reasoning tracker
    /// and the grammar constraint are built here, on the node whose tokenizer they serve.
    /// </summary>
    public static IAsyncEnumerable<JobChunk> Run(Scheduler scheduler, GenerationJob job, CancellationToken ct)
    {
        var (request, tracker) = Prepare(scheduler, job);
        return Tag(scheduler.Submit(request, ct), tracker, ct);
    }

    /// <summary>The job's engine request with its reasoning tracker and grammar constraint built for this node.</summary>
    private static (EngineRequest Request, ReasoningTracker? Tracker) Prepare(Scheduler scheduler, GenerationJob job)
    {
        if (job.Request.Steer is not null || job.Request.Constraint is not null)
            throw new ArgumentException("a job describes its steering and answer format as data (GenerationJob.Reasoning and .Answer), not as live objects");
        var tracker = job.Reasoning?.CreateTracker();
        ITokenConstraint? constraint;
        try { constraint = job.Answer?.Plan(scheduler.Tokenizer)?.Invoke(); }
        catch (GrammarException e) { throw new ArgumentException(e.Message, e); }
        return (job.Request with { Steer = tracker is null ? null : new Func<int, string, int[]?>(tracker.Steer), Constraint = constraint }, tracker);
    }

    private static async IAsyncEnumerable<JobChunk> Tag(IAsyncEnumerable<GenerationChunk> chunks, ReasoningTracker? tracker,
        [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var c in chunks.WithCancellation(ct))
            yield return new JobChunk(c, c.Finish is null ? 0 : tracker?.ReasoningTokens ?? 0);
    }
}
