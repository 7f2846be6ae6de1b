// PLACEHOLDER (server branch): a per-request cap on reasoning tokens. Once the budget is spent while the model is
// still reasoning, it hands back the tokens that close the block (e.g. "\n</think>\n\n"), once.
// The chat-format branch replaces this file with the full implementation of the same API.
namespace R1Sharp.Chat;

public sealed class ThinkingBudget
{
    private readonly int _max;
    private readonly int[] _close;
    private int _used;
    private bool _closed;

    public ThinkingBudget(int maxReasoningTokens, int[] closeTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxReasoningTokens);
        _max = maxReasoningTokens;
        _close = closeTokens;
    }

    /// <summary>Call after each generated token; returns the tokens to force-feed once the budget is spent, else null.</summary>
    public int[]? Next(bool inReasoning)
    {
        if (_closed || !inReasoning) return null;
        if (++_used < _max) return null;
        _closed = true;
        return _close;
    }
}
