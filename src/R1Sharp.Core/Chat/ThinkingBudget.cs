// A cap on the length of the chain of thought: once the model has spent its budget of reasoning tokens and is still
// thinking, the caller force-feeds the closing tokens (e.g. the encoding of "\n</think>\n\n") instead of sampling, and
// the model goes on with its answer. The same device as llama.cpp's --reasoning-budget and Qwen3's thinking budget.
namespace R1Sharp.Chat;

public sealed class ThinkingBudget
{
    private readonly int _max;
    private readonly int[] _closeTokens;
    private int _spent;
    private bool _fired;

    /// <param name="maxReasoningTokens">
    /// Reasoning tokens allowed. The budget is checked after each generated token, so 0 acts as 1: the block closes
    /// after the first token. To skip thinking altogether, render the prompt with thinking off instead.
    /// </param>
    /// <param name="closeTokens">The tokens that close the think block.</param>
    public ThinkingBudget(int maxReasoningTokens, int[] closeTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxReasoningTokens);
        ArgumentNullException.ThrowIfNull(closeTokens);
        if (closeTokens.Length == 0) throw new ArgumentException("no tokens to close the think block with", nameof(closeTokens));
        _max = maxReasoningTokens;
        _closeTokens = closeTokens;
    }

    /// <summary>Reasoning tokens counted so far.</summary>
    public int Spent => _spent;

    /// <summary>True once the close tokens have been handed out.</summary>
    public bool Exhausted => _fired;

    /// <summary>
    /// Call after each generated token with whether the output is still inside the think block (the parser's
    /// <see cref="ReasoningParser.InReasoning"/> after that token). Returns the close tokens, once, when this token
    /// spent the last of the budget and the block is still open; else null. The returned tokens are to be fed to the
    /// model (and to the decoder and parser) as if it had generated them.
    /// </summary>
    public int[]? Next(bool inReasoning)
    {
        if (_fired || !inReasoning) return null;
        if (++_spent < _max) return null;
        _fired = true;
        return _closeTokens;
    }
}
