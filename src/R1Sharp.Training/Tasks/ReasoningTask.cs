// Tasks with verifiable answers: a seeded generator of problems, a worked solution for SFT, and a rule-based reward
// for GRPO and eval. The completion is what the model writes after the generation prompt "<｜Assistant｜><think>\n":
// reasoning, "</think>", then the answer.
using System.Globalization;
using R1Sharp.Chat;

namespace R1Sharp.Training.Tasks;

/// <summary>One problem: the user's question and the canonical answer text.</summary>
public sealed record Problem(string Prompt, string Answer, object Data)
{
    /// <summary>The category eval reports pass@1 by.</summary>
    public string Kind { get; init; } = "all";

    /// <summary>Earlier turns of the conversation (questions and the answers given), rendered before the question.</summary>
    public IReadOnlyList<ChatMessage> History { get; init; } = [];
}

/// <summary>The reward of one completion: Value is what GRPO optimizes (1 correct, 0.1 well-formed but wrong, 0 otherwise).</summary>
public readonly record struct Reward(float Value, bool Correct, bool WellFormed, string? Answer)
{
    public const float FormatOnly = 0.1f;

    public static Reward Of(bool correct, bool wellFormed, string? answer) =>
        new(correct && wellFormed ? 1f : wellFormed ? FormatOnly : 0f, correct && wellFormed, wellFormed, answer);
}

public interface IReasoningTask
{
    string Name { get; }

    /// <summary>The problem for <paramref name="seed"/>: the same seed gives the same problem everywhere.</summary>
    Problem Generate(ulong seed);

    /// <summary>The completion SFT trains on: step-by-step reasoning, "\n&lt;/think&gt;\n", the answer.</summary>
    string Solution(Problem p);

    Reward Score(Problem p, string completion);
}

public static class TaskRegistry
{
    public static IReadOnlyList<string> Names { get; } = ["arithmetic", "countdown"];

    /// <param name="format">The worked-solution format (arithmetic only; null for the task's latest).</param>
    public static IReasoningTask Get(string name, int? format = null) => name switch
    {
        "arithmetic" when format is null or (>= 1 and <= WorkedSolution.LatestFormat) => new ArithmeticTask { Format = format ?? WorkedSolution.LatestFormat },
        "arithmetic" => throw new ArgumentException($"--format {format} is not one of the arithmetic formats (1, 2)"),
        "countdown" when format is null => new CountdownTask(),
        "countdown" => throw new ArgumentException("--format applies to the arithmetic task only"),
        _ => throw new ArgumentException($"unknown task '{name}' (tasks: {string.Join(", ", Names)})"),
    };

    /// <summary>Training problems use seeds below 2^40 (seed·2^20 + index); held-out ones start at 2^48, so the ranges never meet.</summary>
    public const ulong HeldOutBase = 1UL << 48;

    public static ulong TrainSeed(ulong seed, long index) => (seed << 20) + (ulong)index & ((1UL << 40) - 1);

    public static ulong HeldOutSeed(ulong seed, long index) => HeldOutBase + (seed << 20) + (ulong)index;
}

/// <summary>Splits completions into reasoning and answer, and reads answers: the shared rules of every reward.</summary>
public static class Answers
{
    /// <summary>
    /// The answer part of a completion and whether it is well-formed: exactly one "&lt;/think&gt;", no second
    /// "&lt;think&gt;", non-empty reasoning before it and a non-empty answer after it. A completion with no
    /// (or an unclosed) think block has no answer.
    /// </summary>
    public static (string? Answer, bool WellFormed) Split(string completion)
    {
        string text = completion.Replace(R1ChatTemplate.EndOfSentence, "", StringComparison.Ordinal);
        int close = text.IndexOf(R1ChatTemplate.ThinkClose, StringComparison.Ordinal);
        if (close < 0) return (null, false);
        int last = text.LastIndexOf(R1ChatTemplate.ThinkClose, StringComparison.Ordinal);
        string answer = text[(last + R1ChatTemplate.ThinkClose.Length)..].Trim();
        bool wellFormed = close == last && text[..close].Trim().Length > 0 && answer.Length > 0
                          && !text.Contains(R1ChatTemplate.ThinkOpen, StringComparison.Ordinal);
        return (answer.Length > 0 ? answer : null, wellFormed);
    }

    /// <summary>
    /// The integer an answer states: the content of \boxed{...} when there is one, else the only integer in the text
    /// ("The answer is -1,234." is −1234). Several different numbers, a decimal, or none, is no answer: a reward must
    /// not pick for the model.
    /// </summary>
    public static long? Integer(string? answer)
    {
        if (answer is null) return null;
        int box = answer.LastIndexOf("\\boxed{", StringComparison.Ordinal);
        if (box >= 0)
        {
            int end = answer.IndexOf('}', box);
            if (end < 0) return null;
            string inner = answer[(box + 7)..end].Trim().Replace(",", "").Replace('\u2212', '-');
            return long.TryParse(inner, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v : null;
        }
        long? found = null;
        for (int i = 0; i < answer.Length; i++)
        {
            if (!char.IsAsciiDigit(answer[i])) continue;
            int start = i;
            string digits = ReadDigits(answer, ref i);
            bool negative = start > 0 && answer[start - 1] is '-' or '\u2212' && (start < 2 || !char.IsAsciiDigit(answer[start - 2]));
            if (i < answer.Length && answer[i] == '.' && i + 1 < answer.Length && char.IsAsciiDigit(answer[i + 1])) return null; // a decimal
            if (!long.TryParse(digits.AsSpan(0, Math.Min(digits.Length, 18)), out long v)) return null;
            if (negative) v = -v;
            if (found is long f && f != v) return null;
            found = v;
            i--;
        }
        return found;
    }

    /// <summary>
    /// The digits of a number that starts at <paramref name="i"/>, thousands separators dropped ("1,234,567": a first
    /// group of one to three digits, then groups of exactly three); <paramref name="i"/> ends past them.
    /// </summary>
    public static string ReadDigits(string s, ref int i)
    {
        int start = i;
        while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
        string digits = s[start..i];
        if (digits.Length > 3) return digits;
        while (i < s.Length && s[i] == ',' && IsGroup(s, i + 1))
        {
            digits += s.Substring(i + 1, 3);
            i += 4;
        }
        return digits;
    }

    /// <summary>Exactly three digits at <paramref name="at"/>, not followed by a fourth.</summary>
    private static bool IsGroup(string s, int at) =>
        at + 3 <= s.Length && char.IsAsciiDigit(s[at]) && char.IsAsciiDigit(s[at + 1]) && char.IsAsciiDigit(s[at + 2])
        && (at + 3 == s.Length || !char.IsAsciiDigit(s[at + 3]));
}
