// What a caller hands the scheduler (a tokenized prompt and how to sample it) and what streams back
// (text chunks, then one chunk with the finish reason and token counts).
using R1Sharp.Sampling;

namespace R1Sharp.Engine;

public sealed record EngineRequest
{
    public required int[] Prompt { get; init; }
    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;
    /// <summary>Most tokens to generate; prompt + MaxTokens must fit the scheduler's context.</summary>
    public required int MaxTokens { get; init; }
    /// <summary>Generation ends before the first occurrence of any of these; the stop text is not returned.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    /// <summary>Keep generating past end-of-generation tokens (benchmarks).</summary>
    public bool IgnoreEos { get; init; }
    /// <summary>
    /// Called on the engine thread after each generated token with its text (possibly empty while a UTF-8 character
    /// is incomplete). Returns tokens to force-feed after it (e.g. closing a reasoning block whose budget is spent), or null.
    /// Forced tokens count as generated and stream out like sampled ones.
    /// </summary>
    public Func<int, string, int[]?>? Steer { get; init; }
    /// <summary>Restricts the tokens sampled (a grammar); null for none. One instance per request: it holds state.</summary>
    public ITokenConstraint? Constraint { get; init; }
    /// <summary>
    /// Report each generated token's log probability and this many most likely alternatives (0 to
    /// <see cref="LogProbCalculator.MaxTop"/>) in <see cref="GenerationChunk.LogProbs"/>; null for none.
    /// </summary>
    public int? LogProbs { get; init; }
}

public enum FinishReason { Stop, Length, Cancelled }

public sealed record GenerationUsage(int PromptTokens, int CachedPromptTokens, int CompletionTokens);

/// <summary>
/// One step's output for a request: the text its new tokens completed and how many tokens that was. The last
/// chunk carries <see cref="Finish"/> and <see cref="Usage"/>.
/// </summary>
public readonly record struct GenerationChunk(string Text, int Tokens, FinishReason? Finish = null, GenerationUsage? Usage = null)
{
    /// <summary>When the request asked for them: one entry per token of the chunk (end-of-generation tokens excluded).</summary>
    public IReadOnlyList<GeneratedToken>? LogProbs { get; init; }
}

/// <summary>
/// A generated token with its decoded text (empty while a UTF-8 character is incomplete), its log probability (see
/// <see cref="LogProbCalculator"/>) and the most likely tokens of its distribution. A token forced by the request's
/// steering was not drawn: its log probability is 0 and it has no alternatives.
/// </summary>
public sealed record GeneratedToken(int Token, string Text, float LogProb, TokenLogProb[] Top);

/// <summary>The bounded queue is full: the caller should retry later (HTTP 429).</summary>
public sealed class QueueFullException(string message) : Exception(message);

/// <summary>What one step of the scheduler did, for metrics.</summary>
/// <param name="PrefillTokens">prompt tokens run</param>
/// <param name="DecodeTokens">generated tokens fed back (one per decoding sequence, more after forced tokens)</param>
/// <param name="GeneratedTokens">tokens produced for the callers (sampled and forced; end-of-generation tokens excluded)</param>
public readonly record struct StepStats(int PrefillTokens, int DecodeTokens, int GeneratedTokens, int Running, int Queued, TimeSpan Elapsed)
{
    /// <summary>Draft tokens verified in this step (speculative decoding).</summary>
    public int DraftTokens { get; init; }
    /// <summary>Of those, the ones accepted.</summary>
    public int AcceptedTokens { get; init; }
}
