// How chat shows a reply. On a terminal: while the model thinks, a live block of a few dimmed lines (a header with
// the token count and time, then the tail of the reasoning) is redrawn in place; when the answer starts it collapses
// to one line, "thought for 212 tokens, 3.1 s", and /thoughts prints the whole reasoning again. The answer streams
// as plain text, then one dimmed line of statistics. Through a pipe: plain text, the reasoning between <think> and
// </think> lines (the block the prompt opened made whole), then the answer; statistics go to stderr.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using R1Sharp.Chat;

namespace R1Sharp.Cli;

internal abstract class ChatView
{
    protected readonly StringBuilder Reasoning = new();
    protected int ReasoningTokens;
    protected long Started;
    protected TimeSpan ThinkTime;
    protected bool InReasoning;
    protected bool Answering;

    /// <summary>The reasoning of the last reply, for /thoughts and /save.</summary>
    public string LastReasoning => Reasoning.ToString();

    public abstract void Banner(string text);
    public abstract void Prompt(bool continuation);
    /// <summary>Feedback to a command, a warning or an error.</summary>
    public abstract void Info(string text);
    public abstract void ShowThoughts();

    public void BeginReply()
    {
        Reasoning.Clear();
        ReasoningTokens = 0;
        ThinkTime = TimeSpan.Zero;
        InReasoning = Answering = false;
        Started = Stopwatch.GetTimestamp();
        OnBegin();
    }

    /// <summary>One generated token's share of the reasoning and the answer (the last call, after flushing, may be empty).</summary>
    public void Token(ReasoningDelta delta)
    {
        if (!Answering && (InReasoning || delta.Reasoning.Length > 0))
        {
            if (!InReasoning) { InReasoning = true; OnReasoningStart(); }
            ReasoningTokens++;
            Reasoning.Append(delta.Reasoning);
            if (delta.Reasoning.Length > 0) OnReasoning(delta.Reasoning);
        }
        if (delta.Content.Length > 0)
        {
            if (!Answering)
            {
                Answering = true;
                ThinkTime = Stopwatch.GetElapsedTime(Started);
                if (InReasoning) OnReasoningEnd(stopped: false);
                InReasoning = false;
            }
            OnContent(delta.Content);
        }
    }

    public void EndReply(CompletionStats stats)
    {
        if (InReasoning)
        {
            ThinkTime = Stopwatch.GetElapsedTime(Started);
            OnReasoningEnd(stopped: true);
        }
        OnEnd(stats, Answering);
    }

    protected virtual void OnBegin() { }
    protected abstract void OnReasoningStart();
    protected abstract void OnReasoning(string text);
    /// <param name="stopped">the reply ended inside the reasoning (Ctrl+C or the token limit), no answer follows</param>
    protected abstract void OnReasoningEnd(bool stopped);
    protected abstract void OnContent(string text);
    protected abstract void OnEnd(CompletionStats stats, bool answered);

    protected string Summary() => $"thought for {ReasoningTokens} tokens, {ThinkTime.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s";

    protected static string StatsLine(CompletionStats s) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{s.GeneratedTokens} tokens, {s.TokensPerSecond:F1} tok/s · prompt {s.PromptTokens} tokens ({s.CachedTokens} cached) in {s.Prefill.TotalSeconds:F2} s");
}

/// <summary>Plain text for pipes and files: everything readable without escape codes (dim tags when stdout is a terminal).</summary>
internal sealed class PlainChatView(TextWriter stdout, TextWriter stderr, bool dim, bool interactive) : ChatView
{
    private string Open => dim ? "\x1b[2m" + R1ChatTemplate.ThinkOpen + "\n" : R1ChatTemplate.ThinkOpen + "\n";
    private string Close => dim ? "\n" + R1ChatTemplate.ThinkClose + "\x1b[0m\n" : "\n" + R1ChatTemplate.ThinkClose + "\n";

    public override void Banner(string text) { if (interactive) stderr.WriteLine(text); }

    public override void Prompt(bool continuation)
    {
        if (!interactive) return;
        stderr.Write(continuation ? ". " : "> ");
        stderr.Flush();
    }

    public override void Info(string text) => stderr.WriteLine(text);

    public override void ShowThoughts()
    {
        stdout.Write(Open + LastReasoning + Close);
        stdout.Flush();
    }

    protected override void OnReasoningStart() => stdout.Write(Open);

    protected override void OnReasoning(string text)
    {
        stdout.Write(text);
        stdout.Flush();
    }

    protected override void OnReasoningEnd(bool stopped) => stdout.Write(Close + (stopped ? "" : "\n"));

    protected override void OnContent(string text)
    {
        stdout.Write(text);
        stdout.Flush();
    }

    protected override void OnEnd(CompletionStats stats, bool answered)
    {
        if (answered) stdout.WriteLine();
        stdout.Flush();
        stderr.WriteLine((stats.Cancelled ? "[stopped] " : "") + "[" + StatsLine(stats) + "]");
    }
}

/// <summary>A terminal: the reasoning in a live dimmed block that collapses to a summary line.</summary>
internal sealed class TerminalChatView(TextWriter stdout, bool color) : ChatView
{
    /// <summary>Reasoning lines shown while thinking (below the header).</summary>
    private const int TailLines = 4;
    private static readonly TimeSpan s_redraw = TimeSpan.FromMilliseconds(60);
    private static readonly string[] s_spinner = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

    private int _drawn;
    private long _lastDraw;
    private int _frame;

    private string Dim(string s) => color ? "\x1b[2m" + s + "\x1b[0m" : s;
    private string Bold(string s) => color ? "\x1b[1m" + s + "\x1b[0m" : s;

    public override void Banner(string text) => stdout.WriteLine(Dim(text));

    public override void Prompt(bool continuation)
    {
        stdout.Write(continuation ? Dim("… ") : Bold("> "));
        stdout.Flush();
    }

    public override void Info(string text)
    {
        stdout.WriteLine(Dim(TerminalText.Sanitize(text, keepNewlines: true)));
        stdout.Flush();
    }

    public override void ShowThoughts()
    {
        if (Reasoning.Length == 0) { Info("(the last reply has no reasoning)"); return; }
        foreach (var line in LastReasoning.Split('\n'))
            stdout.WriteLine(Dim("│ " + TerminalText.Sanitize(line, keepNewlines: false)));
        stdout.Flush();
    }

    protected override void OnReasoningStart() => Draw(force: true);

    protected override void OnReasoning(string text) => Draw(force: false);

    protected override void OnReasoningEnd(bool stopped)
    {
        Erase();
        string tail = stopped ? " (no answer)" : "";
        stdout.WriteLine(Dim($"▸ {Summary()}{tail} · /thoughts shows it"));
        if (!stopped) stdout.WriteLine();
        stdout.Flush();
    }

    protected override void OnContent(string text)
    {
        stdout.Write(TerminalText.Sanitize(text, keepNewlines: true));
        stdout.Flush();
    }

    protected override void OnEnd(CompletionStats stats, bool answered)
    {
        if (answered) stdout.WriteLine();
        if (stats.Cancelled) stdout.WriteLine(Dim("(stopped)"));
        stdout.WriteLine(Dim(StatsLine(stats)));
        stdout.Flush();
    }

    /// <summary>Redraws the live block: a header, then the last lines of the reasoning, each cut to the width.</summary>
    private void Draw(bool force)
    {
        long now = Stopwatch.GetTimestamp();
        if (!force && Stopwatch.GetElapsedTime(_lastDraw, now) < s_redraw) return;
        _lastDraw = now;
        int width = Math.Max(20, SafeWidth() - 1);
        var lines = new List<string>
        {
            $"{s_spinner[_frame++ % s_spinner.Length]} thinking… {ReasoningTokens} tokens, " +
            $"{Stopwatch.GetElapsedTime(Started).TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s · Ctrl+C stops",
        };
        var text = Reasoning.ToString().Split('\n');
        foreach (var line in text.Skip(Math.Max(0, text.Length - TailLines)))
            lines.Add("│ " + TerminalText.Sanitize(line, keepNewlines: false));
        var sb = new StringBuilder();
        if (_drawn > 0) sb.Append($"\x1b[{_drawn}A\r\x1b[J");
        // no auto-wrap while drawing: a line misjudged as narrower than it is gets clipped, not wrapped (which would
        // shift the block and leave debris on the next redraw)
        sb.Append("\x1b[?7l");
        foreach (var line in lines) sb.Append(Dim(TerminalText.Clip(line, width))).Append('\n');
        sb.Append("\x1b[?7h");
        stdout.Write(sb.ToString());
        stdout.Flush();
        _drawn = lines.Count;
    }

    private void Erase()
    {
        if (_drawn > 0) stdout.Write($"\x1b[{_drawn}A\r\x1b[J");
        _drawn = 0;
    }

    private static int SafeWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 80; }
        catch (IOException) { return 80; }
    }
}

/// <summary>Model output made safe for a terminal: no control characters (a random model writes escape codes too).</summary>
internal static class TerminalText
{
    public static string Sanitize(string s, bool keepNewlines)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            if (c == '\n' && keepNewlines) sb.Append('\n');
            else if (c == '\t') sb.Append(keepNewlines ? "\t" : "    ");
            else if (c < ' ' || c is >= '\u007f' and <= '\u009f') sb.Append('\uFFFD');
            else sb.Append(c);
        }
        return sb.ToString();
    }

    /// <summary>At most <paramref name="columns"/> display columns of <paramref name="s"/> (wide CJK and emoji count 2).</summary>
    public static string Clip(string s, int columns)
    {
        int used = 0, i = 0;
        foreach (var r in s.EnumerateRunes())
        {
            int w = Width(r);
            if (used + w > columns) return s[..i];
            used += w;
            i += r.Utf16SequenceLength;
        }
        return s;
    }

    private static int Width(Rune r)
    {
        var cat = Rune.GetUnicodeCategory(r);
        if (cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format) return 0;
        int v = r.Value;
        bool wide = v is >= 0x1100 and <= 0x115F or >= 0x2E80 and <= 0xA4CF or >= 0xAC00 and <= 0xD7A3 or >= 0xF900 and <= 0xFAFF
            or >= 0xFE30 and <= 0xFE4F or >= 0xFF00 and <= 0xFF60 or >= 0xFFE0 and <= 0xFFE6 or >= 0x1F300 and <= 0x1FAFF
            or >= 0x20000 and <= 0x3FFFD;
        return wide ? 2 : 1;
    }
}
