// The tool-call parser on the answers real models write (R1 and its distills' spellings, DeepSeek-V3.1, Hermes,
// Llama 3.1 JSON): the same calls and content whatever the chunks the text streams in (every split point, and one
// character at a time), held-back text released at the end, calls cut short kept with their partial arguments.
using System.Text;
using R1Sharp.Chat;

namespace R1Sharp.Tests.Chat;

public sealed class ToolCallParserTests
{
    private sealed record Result(string Content, List<(string Name, string Args)> Calls, bool Truncated);

    private static Result Parse(ToolCallSyntax syntax, IEnumerable<string> chunks)
    {
        var p = new ToolCallParser(syntax);
        var events = new List<ToolCallEvent>();
        foreach (string c in chunks) p.Push(c, events);
        p.Finish(events);
        var content = new StringBuilder();
        var calls = new List<(string Name, StringBuilder Args)>();
        foreach (var e in events)
        {
            switch (e)
            {
                case ContentEvent c: content.Append(c.Text); break;
                case CallStartEvent s: Assert.Equal(calls.Count, s.Index); calls.Add((s.Name, new StringBuilder())); break;
                case CallArgumentsEvent a: Assert.Equal(calls.Count - 1, a.Index); calls[^1].Args.Append(a.Fragment); break;
            }
        }
        var result = new Result(content.ToString(), calls.Select(c => (c.Name, c.Args.ToString().Trim())).ToList(), p.Truncated);
        // the streamed events and the parser's summary agree
        Assert.Equal(result.Calls, p.Calls.Select(c => (c.Name, c.Arguments)).ToList());
        return result;
    }

    // Every way of cutting the text in two, and one character at a time, give what the whole text gives.
    private static Result ParseEveryWay(ToolCallSyntax syntax, string text)
    {
        var whole = Parse(syntax, [text]);
        for (int i = 1; i < text.Length; i++)
            AssertSame(whole, Parse(syntax, [text[..i], text[i..]]), $"split at {i}");
        AssertSame(whole, Parse(syntax, text.Select(c => c.ToString())), "one character at a time");
        return whole;
    }

    private static void AssertSame(Result expected, Result actual, string how)
    {
        Assert.True(expected.Content == actual.Content, $"{how}: content {actual.Content} != {expected.Content}");
        Assert.True(expected.Calls.SequenceEqual(actual.Calls), $"{how}: calls differ");
        Assert.Equal(expected.Truncated, actual.Truncated);
    }

    private const string Weather = "{\"city\": \"Paris\", \"unit\": \"celsius\"}";

    public static TheoryData<string> R1Openers =>
    [
        "<｜tool▁calls▁begin｜>", "<｜tool_calls_begin｜>", "<｜tool calls begin｜>", "<｜tool\\_calls\\_begin｜>", "<｜tool▁calls｜>",
        "<|tool▁calls▁begin|>",
    ];

    [Theory]
    [MemberData(nameof(R1Openers))]
    public void R1CallsWithEveryOpenerSpelling(string opener)
    {
        string text = "I will look it up.\n\n" + opener
            + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n" + Weather + "\n```<｜tool▁call▁end｜>\n"
            + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{\"zone\": \"CET\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Equal("I will look it up.\n\n", r.Content);
        Assert.Equal([("get_weather", Weather), ("get_time", "{\"zone\": \"CET\"}")], r.Calls);
        Assert.False(r.Truncated);
    }

    [Fact]
    public void DeepSeekV31Calls()
    {
        string text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>" + Weather + "<｜tool▁call▁end｜>"
            + "<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Equal("", r.Content);
        Assert.Equal([("get_weather", Weather), ("get_time", "{}")], r.Calls);
    }

    [Fact]
    public void AHeadLongerThanANameIsContentHoweverTheTextArrives()
    {
        // found by fuzzing (fuzz/crashes/reasoning): whole, a 98-character head before the separator was a call's
        // name; streamed, the same text was given back as content once it passed the length no name reaches
        string text = "00<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + new string('0', 98) + "<｜tool▁sep｜>";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Empty(r.Calls);
        Assert.Equal(text, r.Content);
        string named = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>" + new string('f', 80) + "\n```json\n{}\n```<｜tool▁call▁end｜>";
        Assert.Empty(ParseEveryWay(ToolCallSyntax.R1, named).Calls);
    }

    [Fact]
    public void AClosingFenceAfterBackticksInTheArgumentsIsFoundHoweverTheTextArrives()
    {
        // found by fuzzing: "``" then the fence; streamed, four backticks in a row were released as arguments
        // before the fence could be seen, so the fence stayed in them
        string text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n``\n```<｜tool▁call▁end｜>";
        Assert.Equal([("add", "``")], ParseEveryWay(ToolCallSyntax.R1, text).Calls);
        string four = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{\"a\": 1}````<｜tool▁call▁end｜>";
        Assert.Equal([("add", "{\"a\": 1}`")], ParseEveryWay(ToolCallSyntax.R1, four).Calls);
    }

    [Fact]
    public void TheFirstCallEndMarkerEndsTheArgumentsHoweverTheTextArrives()
    {
        // found by fuzzing (fuzz/crashes/reasoning/r1-bare-call-end-before-fenced-end): whole, a fenced end further on
        // was preferred, so the bare marker before it became the arguments; streamed, the bare marker ended the call
        string text = "Calling.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n<｜tool▁call▁end｜>```<｜tool▁call▁end｜>\nmore";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Equal([("add", "")], r.Calls);
        Assert.Equal("Calling.```<｜tool▁call▁end｜>\nmore", r.Content);
        // a fence right before the first marker is still the closing fence
        string fenced = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>add\n```json\n{}\n```<｜tool▁call▁end｜>```<｜tool▁call▁end｜>";
        Assert.Equal([("add", "{}")], ParseEveryWay(ToolCallSyntax.R1, fenced).Calls);
    }

    [Fact]
    public void ArgumentsWithBackticksNewlinesAndMarkersLookalikesStayWhole()
    {
        string args = "{\"code\": \"print(`a`)\\n```\", \"html\": \"<b>x</b> a < b\"}";
        string text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>run\n```json\n" + args + "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Equal([("run", args)], r.Calls);
    }

    [Fact]
    public void PlainTextAndLookalikesAreContent()
    {
        foreach (string text in new[]
        {
            "The answer is 42.",
            "Compare a < b and c > d; <b>bold</b> and <｜not a marker｜>.",
            "Use the tool syntax <｜tool▁call▁begin｜> only inside a block.",
            "",
            "```json\n{\"name\": \"get_weather\"}\n```",
        })
        {
            var r = ParseEveryWay(ToolCallSyntax.R1, text);
            Assert.Equal(text, r.Content);
            Assert.Empty(r.Calls);
        }
    }

    [Fact]
    public void AnOpenerFollowedByNoCallIsGivenBackAsContent()
    {
        const string text = "<｜tool▁calls▁begin｜>Actually, no tool is needed: the answer is 4.";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Equal(text, r.Content);
        Assert.Empty(r.Calls);
    }

    [Fact]
    public void ACallCutShortKeepsItsPartialArguments()
    {
        const string text = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Par";
        var r = ParseEveryWay(ToolCallSyntax.R1, text);
        Assert.Equal([("get_weather", "{\"city\": \"Par")], r.Calls);
        Assert.True(r.Truncated);
        Assert.Equal("", r.Content);
    }

    [Fact]
    public void DistillsThatSkipTheCallMarkerStillCall()
    {
        string text = "<｜tool▁calls▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n" + Weather + "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
        Assert.Equal([("get_weather", Weather)], ParseEveryWay(ToolCallSyntax.R1, text).Calls);
    }

    [Fact]
    public void HermesCalls()
    {
        string text = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": " + Weather + "}\n</tool_call>\n"
            + "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
        var r = ParseEveryWay(ToolCallSyntax.Hermes, text);
        Assert.Equal("Let me check.\n\n", r.Content);
        Assert.Equal([("get_weather", Weather), ("get_time", "{}")], r.Calls);
        var notACall = ParseEveryWay(ToolCallSyntax.Hermes, "<tool_call>\nnot json\n</tool_call> done");
        Assert.Equal("<tool_call>\nnot json\n</tool_call> done", notACall.Content);
        Assert.Empty(notACall.Calls);
    }

    [Fact]
    public void Llama3JsonCalls()
    {
        var r = ParseEveryWay(ToolCallSyntax.Llama3Json, "{\"name\": \"get_weather\", \"parameters\": " + Weather + "}");
        Assert.Equal([("get_weather", Weather)], r.Calls);
        Assert.Equal("", r.Content);
        Assert.Equal([("now", "{}")], ParseEveryWay(ToolCallSyntax.Llama3Json, "<|python_tag|>{\"name\": \"now\", \"parameters\": {}}").Calls);
        var text = ParseEveryWay(ToolCallSyntax.Llama3Json, "It is sunny. {\"name\": \"x\"}");
        Assert.Equal("It is sunny. {\"name\": \"x\"}", text.Content);
        Assert.Empty(text.Calls);
        var braces = ParseEveryWay(ToolCallSyntax.Llama3Json, "{not a call}");
        Assert.Equal("{not a call}", braces.Content);
    }

    // What each template writes for an assistant's calls is what the parser reads back.
    [Theory]
    [InlineData(ChatTemplateKind.R1)]
    [InlineData(ChatTemplateKind.ChatML)]
    [InlineData(ChatTemplateKind.Llama3)]
    public void TemplatesWriteCallsTheParserReads(ChatTemplateKind kind)
    {
        ToolCall[] calls = kind == ChatTemplateKind.Llama3
            ? [new("function", "get_weather", Weather)]
            : [new("function", "get_weather", Weather), new("function", "now", "{}")];
        var tools = new[] { ToolDefinition.FromFunction(System.Text.Json.JsonDocument.Parse("""{"name":"get_weather","parameters":{"type":"object"}}""").RootElement) };
        string before = ChatTemplates.Render(kind, [ChatMessage.User("Hi")], "", addGenerationPrompt: true, tools: tools);
        string after = ChatTemplates.Render(kind, [ChatMessage.User("Hi"), new ChatMessage("assistant", null, calls)], "", addGenerationPrompt: false, tools: tools);
        // the assistant's turn: what follows the generation prompt, up to the end-of-turn marker
        string turn = kind == ChatTemplateKind.R1 ? after[after.LastIndexOf(R1ChatTemplate.CallsBegin, StringComparison.Ordinal)..]
            : after[before.Length..];
        foreach (string end in new[] { R1ChatTemplate.EndOfSentence, ChatMLTemplate.ImEnd, Llama3ChatTemplate.EndOfTurn })
            if (turn.IndexOf(end, StringComparison.Ordinal) is int i and >= 0) turn = turn[..i];
        var r = ParseEveryWay(ToolCallParser.SyntaxOf(kind), turn);
        Assert.Equal(calls.Select(c => (c.Name, c.Arguments)).ToList(), r.Calls);
        Assert.Equal("", r.Content.Trim());
        Assert.Contains("get_weather", before);
    }
}
