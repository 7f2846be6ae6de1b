// The reasoning parser on every shape of R1 output, each fed as token-sized pieces, one character at a time, whole,
// and in seeded random chunkings: the totals must not depend on the chunking, and the deltas must add up to them.
using System.Text;
using R1Sharp.Chat;

namespace R1Sharp.Tests.Chat;

public class ReasoningParserTests
{
    public sealed record Case(string Name, bool StartsInReasoning, string[] Pieces, string Reasoning, string Content, bool EndsInReasoning)
    {
        public override string ToString() => Name;
    }

    private static readonly Case[] s_cases =
    [
        // the template forced "<think>\n": the output has only the closing tag
        new("forced-open", true, ["Okay", ",", " the", " user", " asks", ".\n", "</think>", "\n\n", "The", " answer", " is", " 4", "."],
            "Okay, the user asks.", "The answer is 4.", false),
        // an explicit <think> behind a prompt that already opened one is skipped with its newline
        new("explicit-open-forced", true, ["<think>", "\n", "Let", " me", " think", ".\n", "</think>", "\n\n", "Four", "."],
            "Let me think.", "Four.", false),
        // a template that does not open the block: the model writes <think> itself
        new("explicit-open", false, ["<think>", "\n", "Let", " me", " think", ".\n", "</think>", "\n\n", "Four", "."],
            "Let me think.", "Four.", false),
        new("tags-as-text-pieces", true, ["Hm", "m", ".", "\n", "</", "th", "ink", ">", "\n", "\n", "Yes"], "Hmm.", "Yes", false),
        new("never-closed", true, ["Hmm", ",", " a", " long", " thought", " that", " never", " ends", "\n\n"],
            "Hmm, a long thought that never ends", "", true),
        new("empty-think", false, ["<think>", "\n\n", "</think>", "\n\n", "Hello", "!"], "", "Hello!", false),
        new("empty-think-forced", true, ["<think>", "\n\n", "</think>", "\n\n", "Hello", "!"], "", "Hello!", false),
        new("close-at-once", true, ["\n\n", "</think>", "\n\n", "Hi", "."], "", "Hi.", false),
        new("thinking-off", false, ["The", " answer", " is", " 4", ".", "\n"], "", "The answer is 4.\n", false),
        // with thinking off a <think> that does not open the output is text
        new("thinking-off-stray-tags", false, ["Use", " the", " <think>", " tag", " and", " </think>", "."],
            "", "Use the <think> tag and </think>.", false),
        // ... but one that opens it is reasoning the model did anyway
        new("thinking-off-model-thinks", false, ["\n", "<think>", "Quick", " check", "</think>", "Done"], "Quick check", "Done", false),
        new("whitespace-inside-kept", true, ["  line", " 1", "\n\n", "line", " 2", "  ", "\n", "</think>", " \t\n", "a", "\n\n", "b", "  \n"],
            "line 1\n\nline 2", "a\n\nb  \n", false),
        new("almost-a-close-tag", true, ["a", " <", "/th", "is", " is", " fine", "</think>", "x"], "a </this is fine", "x", false),
        new("open-tag-inside-reasoning", true, ["I", " wrote", " <think>", " here", "\n", "</think>", "ok"], "I wrote <think> here", "ok", false),
        new("close-tag-inside-answer", true, ["r", "</think>", "\n\n", "Ans", " </think>", " more"], "r", "Ans </think> more", false),
        new("two-think-blocks", false, ["<think>", "a", "</think>", "\n", "<think>", "b", "</think>", "c"], "ab", "c", false),
        new("answer-starts-with-angle", false, ["<", "div", ">", "hi"], "", "<div>hi", false),
        new("partial-open-at-end", false, ["<th", "i"], "", "<thi", false),
        new("partial-close-at-end", true, ["x", " \n", "</th"], "x \n</th", "", true),
        new("only-whitespace", false, ["\n", "  ", "\t"], "", "", false),
        new("nothing", true, [], "", "", true),
        new("unicode", true, ["考虑", "一下", " 🙂", "\n", "</think>", "\n\n", "答案", "：", "🌊", " é"], "考虑一下 🙂", "答案：🌊 é", false),
    ];

    public static TheoryData<Case> Cases()
    {
        var data = new TheoryData<Case>();
        foreach (var c in s_cases) data.Add(c);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TokenSizedPieces(Case c) => Check(c, c.Pieces);

    [Theory]
    [MemberData(nameof(Cases))]
    public void OneCharacterAtATime(Case c) => Check(c, string.Concat(c.Pieces).Select(ch => ch.ToString()).ToArray());

    [Theory]
    [MemberData(nameof(Cases))]
    public void WholeText(Case c) => Check(c, [string.Concat(c.Pieces)]);

    [Theory]
    [MemberData(nameof(Cases))]
    public void SeededRandomChunkings(Case c)
    {
        string text = string.Concat(c.Pieces);
        for (int seed = 0; seed < 20; seed++)
        {
            var rng = new Random(seed);
            var chunks = new List<string>();
            for (int i = 0; i < text.Length;)
            {
                int n = Math.Min(rng.Next(0, 6), text.Length - i);   // empty pieces too
                chunks.Add(text.Substring(i, n));
                i += n;
            }
            Check(c, chunks.ToArray());
        }
    }

    [Fact]
    public void ReasoningStreamsBeforeTheBlockCloses()
    {
        var p = new ReasoningParser(startsInReasoning: true);
        Assert.Equal(new ReasoningDelta("Okay", ""), p.Push("Okay"));
        // a partial tag is held back, the text before it is not
        Assert.Equal(new ReasoningDelta(", so", ""), p.Push(", so</th"));
        Assert.True(p.InReasoning);
        Assert.True(p.Push("ink>").IsEmpty);
        Assert.False(p.InReasoning);
        Assert.True(p.Push("\n\n").IsEmpty);
        Assert.Equal(new ReasoningDelta("", "Yes"), p.Push("Yes"));
        Assert.Equal(new ReasoningDelta("", " and no"), p.Push(" and no"));
        Assert.True(p.Flush().IsEmpty);
        Assert.Equal("Okay, so", p.Reasoning);
        Assert.Equal("Yes and no", p.Content);
    }

    [Fact]
    public void WhitespaceInsideTheReasoningWaitsForWhatFollows()
    {
        var p = new ReasoningParser(startsInReasoning: true);
        Assert.Equal("step 1", p.Push("step 1").Reasoning);
        Assert.True(p.Push("\n").IsEmpty);
        Assert.Equal("\nstep 2", p.Push("step 2").Reasoning);
    }

    [Fact]
    public void EmptyDeltaIsEmpty()
    {
        Assert.True(ReasoningDelta.Empty.IsEmpty);
        Assert.True(default(ReasoningDelta).IsEmpty);
        Assert.False(new ReasoningDelta("", "x").IsEmpty);
        Assert.False(new ReasoningDelta("x", "").IsEmpty);
    }

    private static void Check(Case c, string[] pieces)
    {
        var p = new ReasoningParser(c.StartsInReasoning);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        foreach (string piece in pieces)
        {
            var d = p.Push(piece);
            reasoning.Append(d.Reasoning);
            content.Append(d.Content);
            Assert.Equal(reasoning.ToString(), p.Reasoning);
            Assert.Equal(content.ToString(), p.Content);
        }
        var f = p.Flush();
        reasoning.Append(f.Reasoning);
        content.Append(f.Content);

        Assert.Equal(c.Reasoning, p.Reasoning);
        Assert.Equal(c.Content, p.Content);
        Assert.Equal(c.Reasoning, reasoning.ToString());
        Assert.Equal(c.Content, content.ToString());
        Assert.Equal(c.EndsInReasoning, p.InReasoning);
        Assert.True(p.Flush().IsEmpty);
    }
}
