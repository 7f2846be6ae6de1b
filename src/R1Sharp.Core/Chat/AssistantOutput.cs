// One assistant turn as it streams: the model's text split into reasoning and answer (ReasoningParser), and the
// answer's tool calls parsed out (ToolCallParser) when tools are on. The server and R1ChatClient both read a turn
// through it, so they report the same reasoning, content and calls for the same tokens.
using System.Text;

namespace R1Sharp.Chat;

/// <summary>What one piece of output adds: reasoning, answer text, and tool-call events (call start, argument fragments).</summary>
public readonly record struct OutputDelta(string Reasoning, string Content, IReadOnlyList<ToolCallEvent> ToolEvents);

public sealed class AssistantOutput
{
    private readonly ReasoningParser _reasoning;
    private readonly ToolCallParser? _tools;
    private readonly int _maxCalls;
    private readonly StringBuilder _allReasoning = new(), _content = new();
    private readonly List<ToolCallEvent> _events = [];
    private bool _answerStarted;

    /// <param name="startsInReasoning">The prompt left the model inside a think block.</param>
    /// <param name="toolSyntax">The format of the calls to parse out of the answer; null when the request has no tools.</param>
    /// <param name="parallelCalls">false keeps only the first call of the answer (OpenAI's parallel_tool_calls: false).</param>
    public AssistantOutput(bool startsInReasoning, ToolCallSyntax? toolSyntax = null, bool parallelCalls = true)
    {
        _reasoning = new ReasoningParser(startsInReasoning);
        _tools = toolSyntax is { } s ? new ToolCallParser(s) : null;
        _maxCalls = parallelCalls ? int.MaxValue : 1;
    }

    public string Reasoning => _allReasoning.ToString();
    public string Content => _content.ToString();

    /// <summary>The calls of the answer (at most one when parallel calls are off).</summary>
    public IReadOnlyList<ParsedToolCall> Calls => _tools is null ? [] : [.. _tools.Calls.Take(_maxCalls)];

    /// <summary>The answer ended inside a call (its arguments are incomplete).</summary>
    public bool CallTruncated => _tools is { Truncated: true } && _tools.Calls.Count <= _maxCalls;

    /// <summary>Takes the next decoded text.</summary>
    public OutputDelta Push(string text) => Take(_reasoning.Push(text), final: false);

    /// <summary>The output ended: releases what was held back.</summary>
    public OutputDelta Finish() => Take(_reasoning.Flush(), final: true);

    private OutputDelta Take(ReasoningDelta d, bool final)
    {
        _allReasoning.Append(d.Reasoning);
        string content = d.Content;
        // R1 puts a blank line after </think>; the answer starts after it
        if (!_answerStarted && _allReasoning.Length > 0) content = content.TrimStart('\n');
        _answerStarted |= content.Length > 0;
        if (_tools is null)
        {
            _content.Append(content);
            return new OutputDelta(d.Reasoning, content, []);
        }
        _events.Clear();
        _tools.Push(content, _events);
        if (final) _tools.Finish(_events);
        var text = new StringBuilder();
        var calls = new List<ToolCallEvent>();
        foreach (var e in _events)
        {
            switch (e)
            {
                case ContentEvent c: text.Append(c.Text); break;
                case CallStartEvent s when s.Index < _maxCalls: calls.Add(s); break;
                case CallArgumentsEvent a when a.Index < _maxCalls: calls.Add(a); break;
            }
        }
        string answer = text.ToString();
        _content.Append(answer);
        return new OutputDelta(d.Reasoning, answer, calls);
    }
}
