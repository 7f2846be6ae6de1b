// Runs on the engine thread through EngineRequest.Steer: follows whether the output is inside <think>, counts
// reasoning tokens, and closes the block when the request's reasoning budget is spent. Shared by the HTTP server
// and R1ChatClient.
namespace R1Sharp.Chat;

public sealed class ReasoningTracker(bool startsInReasoning, ThinkingBudget? budget)
{
    private readonly ReasoningParser _parser = new(startsInReasoning);
    private int _reasoningTokens;

    /// <summary>Reasoning tokens so far (forced closing tokens included); read after the request's last chunk.</summary>
    public int ReasoningTokens => Volatile.Read(ref _reasoningTokens);

    /// <summary>The EngineRequest.Steer callback: takes one generated token's text, returns tokens to force or null.</summary>
    public int[]? Steer(int token, string text)
    {
        bool before = _parser.InReasoning;
        _parser.Push(text);
        if (before || _parser.InReasoning) Interlocked.Increment(ref _reasoningTokens);
        return budget?.Next(_parser.InReasoning);
    }
}
