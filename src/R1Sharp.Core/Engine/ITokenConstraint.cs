// The seam through which a request restricts what may be sampled (structured outputs, forced tool calls): the
// scheduler samples as usual, and only when the constraint refuses the token does it mask the row and sample again
// (llama.cpp's order: the mask is computed only on a refusal). Drawing from p and redrawing from p restricted to the
// allowed tokens when the first draw is refused gives exactly p restricted and renormalized, so the output follows
// the masked distribution.
namespace R1Sharp.Engine;

public interface ITokenConstraint
{
    /// <summary>Whether the next token is constrained at all (a grammar that starts after the reasoning is not, before).</summary>
    bool Active { get; }

    /// <summary>Whether <paramref name="token"/> may come next; only asked while <see cref="Active"/>.</summary>
    bool IsAllowed(int token);

    /// <summary>Sets bit t of <paramref name="allowed"/> (word t/64, bit t%64) for exactly the tokens that may come next.</summary>
    void FillMask(Span<ulong> allowed);

    /// <summary>Every token that enters the output, sampled or forced, with its decoded text (empty while a UTF-8 character is incomplete).</summary>
    void Accept(int token, string text);
}
