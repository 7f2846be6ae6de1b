// Tool calls parsed out of a model's answer as it streams, in the format of its chat template:
// - R1 (and R1-Distill): <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>
//   (further calls after a newline) <｜tool▁calls▁end｜>; the opener's spellings real distills write are accepted
//   (<｜tool_calls_begin｜>, <｜tool calls begin｜>, <｜tool\_calls\_begin｜>, <｜tool▁calls｜>, ASCII bars), and
//   DeepSeek-V3.1's form, <｜tool▁call▁begin｜>NAME<｜tool▁sep｜>ARGS<｜tool▁call▁end｜>, with no "function" and no fence;
// - Hermes (Qwen2.5's ChatML): <tool_call>\n{"name": NAME, "arguments": ARGS}\n</tool_call>, one block per call;
// - Llama 3.1: an answer that is one JSON object {"name": NAME, "parameters": ARGS} (after an optional <|python_tag|>).
// Only the answer is parsed: a call written inside the reasoning is not a call. Text that may be the start of a
// marker is held back until the next chunk tells, so content never shows half a marker.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace R1Sharp.Chat;

public enum ToolCallSyntax { R1, Hermes, Llama3Json }

/// <summary>What the parser found in a chunk of answer text, in order.</summary>
public abstract record ToolCallEvent;
/// <summary>Answer text outside any call.</summary>
public sealed record ContentEvent(string Text) : ToolCallEvent;
/// <summary>Call <see cref="Index"/> (0-based) to <see cref="Name"/> begins.</summary>
public sealed record CallStartEvent(int Index, string Name) : ToolCallEvent;
/// <summary>More of call <see cref="Index"/>'s arguments text.</summary>
public sealed record CallArgumentsEvent(int Index, string Fragment) : ToolCallEvent;

/// <summary>A complete call: its function's name and its arguments as JSON text.</summary>
public sealed record ParsedToolCall(string Name, string Arguments);

public sealed partial class ToolCallParser(ToolCallSyntax syntax)
{
    public static ToolCallSyntax SyntaxOf(ChatTemplateKind kind) => kind switch
    {
        ChatTemplateKind.ChatML => ToolCallSyntax.Hermes,
        ChatTemplateKind.Llama3 => ToolCallSyntax.Llama3Json,
        _ => ToolCallSyntax.R1,
    };

    private enum State { Content, BetweenCalls, Header, R1Name, R1Fence, Arguments, AfterCalls, HermesCall, Llama3Json }

    private readonly StringBuilder _buf = new();       // text received and not yet accounted for
    private readonly StringBuilder _blockRaw = new();  // a block's text from its opener until its first call starts
    private readonly StringBuilder _args = new();
    private readonly List<ParsedToolCall> _calls = [];
    private State _state = State.Content;
    private int _callsInBlock;
    private bool _v31;          // the current R1 call is in DeepSeek-V3.1's form
    private string _name = "";
    private bool _sawContent;   // Llama 3: the answer started as text, so it is not a call

    /// <summary>The calls found so far (the last one unfinished when the answer was cut short: see <see cref="Truncated"/>).</summary>
    public IReadOnlyList<ParsedToolCall> Calls => _calls;

    /// <summary>True when the answer ended inside a call, whose arguments are then incomplete.</summary>
    public bool Truncated { get; private set; }

    // Marker spellings: the separator between words may be ▁, _, \_ or a space; the bars full-width or ASCII.
    private const string Sep = @"(?:▁|_|\\_| )";
    private const string Bar = "[｜|]";
    [GeneratedRegex($@"<{Bar}tool{Sep}calls(?:{Sep}begin)?{Bar}>")] private static partial Regex CallsBegin();
    [GeneratedRegex($@"^<{Bar}tool{Sep}call{Sep}begin{Bar}>")] private static partial Regex CallBegin();
    [GeneratedRegex($@"<{Bar}tool{Sep}sep{Bar}>")] private static partial Regex ToolSep();
    [GeneratedRegex($@"<{Bar}tool{Sep}call{Sep}end{Bar}>")] private static partial Regex CallEnd();
    [GeneratedRegex($@"^<{Bar}tool{Sep}calls{Sep}end{Bar}>")] private static partial Regex CallsEnd();
    // R1's arguments end with a closing fence and the call end marker
    [GeneratedRegex($@"\s*```\s*<{Bar}tool{Sep}call{Sep}end{Bar}>")] private static partial Regex FencedCallEnd();

    // Longer than any marker spelling: text this long that starts no marker can be released.
    private const int MaxMarker = 40;
    // Longest function name (with the "function" type before R1's separator): a longer head is not a call.
    private const int MaxName = 64;

    /// <summary>Parses the next piece of the answer; appends what it found to <paramref name="events"/>.</summary>
    public void Push(string text, List<ToolCallEvent> events)
    {
        _buf.Append(text);
        while (Step(events, final: false)) { }
    }

    /// <summary>
    /// The answer ended: releases held text. A call cut short stays a call with the arguments written so far
    /// (<see cref="Truncated"/>), as OpenAI returns one when max_tokens ends it; a block that never started a call
    /// is given back as content, as the model wrote it.
    /// </summary>
    public void Finish(List<ToolCallEvent> events)
    {
        while (Step(events, final: true)) { }
        switch (_state)
        {
            case State.Llama3Json:
                FinishLlama3(events);
                break;
            case State.R1Fence or State.Arguments:
                EmitArguments(events, _buf.Length);
                _calls.Add(new ParsedToolCall(_name, _args.ToString().Trim()));
                Truncated = true;
                break;
            case State.BetweenCalls or State.Header or State.R1Name or State.HermesCall:
                GiveBack(events);
                break;
            default:
                EmitContent(events, _buf.Length);
                break;
        }
        _buf.Clear();
        _state = State.AfterCalls;
    }

    // What was taken for the start of a block or call is content: the opener and what followed, or (after a call
    // of the block) the text that followed it.
    private void GiveBack(List<ToolCallEvent> events)
    {
        string text = (_callsInBlock == 0 ? _blockRaw.ToString() : "") + _buf;
        _blockRaw.Clear();
        _buf.Clear();
        if (text.Length > 0 && !(_callsInBlock > 0 && string.IsNullOrWhiteSpace(text))) events.Add(new ContentEvent(text));
        _state = State.AfterCalls;
    }

    private void Consume(int n)
    {
        if (_callsInBlock == 0 || _state is State.Content or State.AfterCalls) _blockRaw.Append(_buf, 0, n);
        _buf.Remove(0, n);
    }

    private void EmitContent(List<ToolCallEvent> events, int n)
    {
        if (n <= 0) return;
        events.Add(new ContentEvent(_buf.ToString(0, n)));
        _buf.Remove(0, n);
    }

    // One transition; false when it needs more text.
    private bool Step(List<ToolCallEvent> events, bool final)
    {
        string s = _buf.ToString();
        switch (_state)
        {
            case State.Content:
            {
                if (syntax == ToolCallSyntax.Llama3Json) return StepLlama3(events, s, final);
                var (at, length) = syntax == ToolCallSyntax.Hermes ? IndexOf(s, "<tool_call>")
                    : CallsBegin().Match(s) is { Success: true } m ? (m.Index, m.Length) : (-1, 0);
                if (at < 0)
                {
                    EmitContent(events, s.Length - (final ? 0 : HeldBack(s)));
                    return false;
                }
                EmitContent(events, at);
                _blockRaw.Clear();
                _callsInBlock = 0;
                Consume(length);
                _state = syntax == ToolCallSyntax.Hermes ? State.HermesCall : State.BetweenCalls;
                return true;
            }
            case State.AfterCalls:
                // after a block of R1 calls the model ends its turn; anything more is content
                EmitContent(events, s.Length);
                return false;
            case State.BetweenCalls:
            {
                int ws = LeadingWhitespace(s);
                string rest = s[ws..];
                if (CallBegin().Match(rest) is { Success: true } b) { Consume(ws + b.Length); _state = State.Header; return true; }
                if (CallsEnd().Match(rest) is { Success: true } e) { Consume(ws + e.Length); _blockRaw.Clear(); _state = State.AfterCalls; return true; }
                // distills sometimes skip the call marker and go straight to "function<｜tool▁sep｜>"
                if (ToolSep().Match(rest) is { Success: true } sep && rest[..sep.Index].Trim() == "function") { Consume(ws); _state = State.Header; return true; }
                bool mayStartCall = rest.Length < MaxMarker
                    && (rest.Length == 0 || rest[0] == '<' || "function".StartsWith(rest, StringComparison.Ordinal) || rest.StartsWith("function", StringComparison.Ordinal));
                if (!mayStartCall) GiveBack(events);
                return false;
            }
            case State.Header:
            {
                var sep = ToolSep().Match(s);
                if (!sep.Success)
                {
                    if (s.Length > MaxName + MaxMarker) GiveBack(events); // no name is this long
                    return false;
                }
                // the same limit when the separator came at once, so that how the text arrives changes nothing
                if (sep.Index > MaxName) { GiveBack(events); return true; }
                string head = s[..sep.Index].Trim();
                Consume(sep.Index + sep.Length);
                if (head == "function") { _v31 = false; _state = State.R1Name; }
                else { _v31 = true; _name = head; StartCall(events); _state = State.Arguments; }
                return true;
            }
            case State.R1Name:
            {
                int end = s.IndexOfAny(['\n', '`', '{']);
                if (end < 0 || end > MaxName)
                {
                    if (end > MaxName || s.Length > MaxName + MaxMarker) { GiveBack(events); return end >= 0; }
                    return false;
                }
                _name = s[..end].Trim();
                Consume(end);
                StartCall(events);
                _state = State.R1Fence;
                return true;
            }
            case State.R1Fence:
            {
                // "\n```json\n" before the arguments; a missing fence or language tag is tolerated
                int ws = LeadingWhitespace(s);
                string rest = s[ws..];
                if (rest.StartsWith("```", StringComparison.Ordinal))
                {
                    int nl = rest.IndexOf('\n');
                    if (nl < 0) return false;
                    Consume(ws + nl + 1);
                }
                else if (rest.Length == 0 || "```".StartsWith(rest, StringComparison.Ordinal)) return false;
                else Consume(ws);
                _state = State.Arguments;
                return true;
            }
            case State.Arguments:
            {
                // the first call end marker ends the arguments, with the closing fence before it when there is one
                // (a fenced end further on must not win: streamed text would have ended the call at the first marker)
                var end = CallEnd().Match(s);
                if (!_v31 && end.Success && FencedCallEnd().Match(s) is { Success: true } f && f.Index + f.Length == end.Index + end.Length) end = f;
                if (!end.Success)
                {
                    EmitArguments(events, s.Length - (final ? 0 : HeldBack(s)));
                    return false;
                }
                EmitArguments(events, end.Index);
                Consume(end.Length);
                _calls.Add(new ParsedToolCall(_name, _args.ToString().Trim()));
                _args.Clear();
                _state = State.BetweenCalls;
                return true;
            }
            case State.HermesCall:
            {
                int end = s.IndexOf("</tool_call>", StringComparison.Ordinal);
                if (end < 0) return false;
                if (TryReadCall(s[..end], "arguments", out string name, out string args))
                {
                    _name = name;
                    StartCall(events);
                    events.Add(new CallArgumentsEvent(_calls.Count, args));
                    _calls.Add(new ParsedToolCall(name, args));
                    _buf.Remove(0, end + "</tool_call>".Length);
                    _blockRaw.Clear();
                }
                else
                {
                    _buf.Remove(0, end + "</tool_call>".Length);
                    _blockRaw.Append(s, 0, end + "</tool_call>".Length);
                    events.Add(new ContentEvent(_blockRaw.ToString())); // not a call: the block stays content as written
                    _blockRaw.Clear();
                }
                _state = State.Content;
                return true;
            }
            default:
                return false;
        }
    }

    private void StartCall(List<ToolCallEvent> events)
    {
        _callsInBlock++;
        _blockRaw.Clear();
        events.Add(new CallStartEvent(_calls.Count, _name));
    }

    private void EmitArguments(List<ToolCallEvent> events, int n)
    {
        if (n <= 0) return;
        string fragment = _buf.ToString(0, n);
        _buf.Remove(0, n);
        if (_args.Length == 0) fragment = fragment.TrimStart(); // the arguments' leading whitespace is not part of them
        if (fragment.Length == 0) return;
        _args.Append(fragment);
        events.Add(new CallArgumentsEvent(_calls.Count, fragment));
    }

    private static (int, int) IndexOf(string s, string marker) => (s.IndexOf(marker, StringComparison.Ordinal), marker.Length);

    private static int LeadingWhitespace(string s)
    {
        int i = 0;
        while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
        return i;
    }

    // How much of the end of s may be the start of a marker, held back until more text tells: from the last '<'
    // (a marker not yet closed by '>'), and in R1 arguments the whitespace and backticks of a closing fence.
    private int HeldBack(string s)
    {
        int from = s.Length;
        int lt = s.LastIndexOf('<');
        if (lt >= 0 && s.Length - lt < MaxMarker && s.IndexOf('>', lt) < 0) from = lt;
        if (_state == State.Arguments && !_v31)
        {
            // what may begin the closing fence (whitespace, up to three backticks, whitespace) waits for the rest:
            // the fence's match must not depend on where the text was cut
            int i = from;
            while (i > 0 && char.IsWhiteSpace(s[i - 1])) i--;
            for (int k = 0; k < 3 && i > 0 && s[i - 1] == '`'; k++) i--;
            while (i > 0 && char.IsWhiteSpace(s[i - 1])) i--;
            from = i;
        }
        else if (syntax == ToolCallSyntax.Hermes)
        {
            // "<tool_call>" has no '>' until its end, covered above
        }
        return s.Length - from;
    }

    private bool StepLlama3(List<ToolCallEvent> events, string s, bool final)
    {
        if (_sawContent) { EmitContent(events, s.Length); return false; }
        const string pythonTag = "<|python_tag|>";
        string rest = s[LeadingWhitespace(s)..];
        if (rest.Length == 0) return false;
        if (rest[0] == '{' || rest.StartsWith(pythonTag, StringComparison.Ordinal)) { _state = State.Llama3Json; return false; }
        if (!final && pythonTag.StartsWith(rest, StringComparison.Ordinal)) return false;
        _sawContent = true;
        EmitContent(events, s.Length);
        return false;
    }

    // The whole answer is held until it ends: a JSON call, or content after all.
    private void FinishLlama3(List<ToolCallEvent> events)
    {
        string text = _buf.ToString();
        string body = text.Trim();
        if (body.StartsWith("<|python_tag|>", StringComparison.Ordinal)) body = body["<|python_tag|>".Length..].Trim();
        if (TryReadCall(body, "parameters", out string name, out string args) || TryReadCall(body, "arguments", out name, out args))
        {
            _name = name;
            StartCall(events);
            events.Add(new CallArgumentsEvent(_calls.Count, args));
            _calls.Add(new ParsedToolCall(name, args));
        }
        else events.Add(new ContentEvent(text));
    }

    // {"name": NAME, "<argsKey>": {...}}: the name and the arguments' JSON text (a string holding JSON is taken too).
    private static bool TryReadCall(string json, string argsKey, out string name, out string args)
    {
        name = args = "";
        try
        {
            using var doc = JsonDocument.Parse(json.Trim());
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String) return false;
            name = n.GetString()!;
            if (!root.TryGetProperty(argsKey, out var a)) { args = "{}"; return root.EnumerateObject().Count() == 1; }
            args = a.ValueKind == JsonValueKind.String ? a.GetString()! : a.GetRawText();
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
