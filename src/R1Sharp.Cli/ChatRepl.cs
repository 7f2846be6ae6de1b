// The chat loop: reads a message (multi-line with a trailing \ or between """ lines), runs slash commands, and
// streams each reply through a ChatView. Ctrl+C stops the reply being generated, not the program; Ctrl+D (or the
// end of piped input) quits. Only the answers go back into the conversation, as the API does with reasoning_content;
// the session keeps what it already computed of the conversation so a new turn prefills only its new tokens.
using System.Text;
using System.Text.Json;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Sampling;

namespace R1Sharp.Cli;

internal sealed class ChatRepl(LoadedModel lm, string modelName, InferenceSession session, Sampler sampler, ChatSetup setup,
                               int maxTokens, ChatView view, TextReader input, Speculator? spec = null)
{
    public const string Help = """"
        commands:
          /think on|off   reasoning on or off (off: the model answers at once)
          /budget N|off   at most N reasoning tokens, then </think> is forced (0: as /think off; off: no limit)
          /thoughts       show the whole reasoning of the last reply
          /reset          forget the conversation
          /save FILE      write the conversation (with the reasoning) as JSON
          /help           this list
          /exit           quit (also Ctrl+D)
        a line ending with \ continues on the next line; a line with only """ starts or ends a block of lines.
        Ctrl+C stops the answer being written.
        """";

    private sealed record Turn(ChatMessage Message, string? Reasoning);

    private readonly List<Turn> _turns = new();
    private CancellationTokenSource? _generating;
    private int? _budget = setup.ThinkBudget;

    public int Run()
    {
        Console.CancelKeyPress += OnCancelKey;
        try
        {
            view.Banner($"{modelName} ({ChatTemplates.Name(setup.Kind)} format, thinking {(setup.Thinking ? "on" : "off")}): " +
                        "type a message; /help lists commands; Ctrl+C stops an answer, Ctrl+D quits.");
            while (ReadMessage() is { } text)
            {
                string trimmed = text.Trim();
                if (trimmed.Length == 0) continue;
                if (trimmed.StartsWith('/') && !trimmed.StartsWith("//", StringComparison.Ordinal))
                {
                    if (!Command(trimmed)) break;
                    continue;
                }
                // "//text" sends "/text"
                Reply(trimmed.StartsWith("//", StringComparison.Ordinal) ? text.TrimStart()[1..] : text);
            }
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= OnCancelKey;
        }
    }

    private void OnCancelKey(object? sender, ConsoleCancelEventArgs e)
    {
        if (_generating is { } cts)
        {
            e.Cancel = true;
            cts.Cancel();
        }
        else if (!Console.IsInputRedirected)
        {
            e.Cancel = true;
            view.Info("\n(Ctrl+D or /exit quits)");
            view.Prompt(continuation: false);
        }
    }

    /// <summary>The next message, or null at the end of the input.</summary>
    private string? ReadMessage()
    {
        view.Prompt(continuation: false);
        string? line = input.ReadLine();
        if (line is null) return null;
        if (line.Trim() == "\"\"\"")
        {
            var block = new StringBuilder();
            while (true)
            {
                view.Prompt(continuation: true);
                string? next = input.ReadLine();
                if (next is null || next.Trim() == "\"\"\"") break;
                if (block.Length > 0) block.Append('\n');
                block.Append(next);
            }
            return block.ToString();
        }
        var text = new StringBuilder();
        while (line.EndsWith('\\'))
        {
            text.Append(line, 0, line.Length - 1).Append('\n');
            view.Prompt(continuation: true);
            line = input.ReadLine();
            if (line is null) return text.ToString();
        }
        return text.Append(line).ToString();
    }

    /// <summary>Runs a slash command; false to quit.</summary>
    private bool Command(string line)
    {
        var parts = line.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string arg = parts.Length > 1 ? parts[1] : "";
        switch (parts[0].ToLowerInvariant())
        {
            case "/exit" or "/quit" or "/bye":
                return false;
            case "/help" or "/?":
                view.Info(Help);
                break;
            case "/reset" or "/clear":
                _turns.Clear();
                view.Info("(conversation cleared)");
                break;
            case "/think":
                if (arg is not ("on" or "off")) { view.Info("usage: /think on|off"); break; }
                if (arg == "on" && !ChatTemplates.PromptOpensThink(setup.Kind, true))
                    view.Info($"(the {ChatTemplates.Name(setup.Kind)} format has no think block; the model decides whether it reasons)");
                setup = setup with { Thinking = arg == "on", ThinkBudget = arg == "on" ? _budget : null };
                view.Info($"(thinking {arg}{(setup.ThinkBudget is int b ? $", budget {b} tokens" : "")})");
                break;
            case "/budget":
                if (arg is "off" or "none" or "unlimited") _budget = null;
                else if (int.TryParse(arg, out int given) && given >= 0) _budget = given;
                else { view.Info("usage: /budget N (reasoning tokens; 0 turns thinking off) or /budget off"); break; }
                setup = _budget == 0 ? setup with { Thinking = false, ThinkBudget = null } : setup with { Thinking = true, ThinkBudget = _budget };
                view.Info(_budget switch
                {
                    null => "(no reasoning budget)",
                    0 => "(thinking off)",
                    int n => $"(reasoning budget {n} tokens)",
                });
                break;
            case "/thoughts" or "/reasoning" or "/expand":
                view.ShowThoughts();
                break;
            case "/save":
                if (arg.Length == 0) { view.Info("usage: /save FILE"); break; }
                try
                {
                    Save(arg);
                    view.Info($"(saved {_turns.Count} messages to {arg})");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
                {
                    view.Info($"error: could not save to {arg}: {e.Message}");
                }
                break;
            default:
                view.Info($"unknown command {parts[0]}; /help lists them (start a message with // to send a leading /)");
                break;
        }
        return true;
    }

    private void Reply(string text)
    {
        _turns.Add(new Turn(ChatMessage.User(text), null));
        var messages = _turns.Select(t => t.Message).ToList();
        int[] ids = lm.Tokenizer.Encode(setup.Render(messages, lm));
        if (ids.Length >= session.ContextSize)
        {
            view.Info($"error: the conversation ({ids.Length} tokens) no longer fits the context of {session.ContextSize}; /reset to start over");
            _turns.RemoveAt(_turns.Count - 1);
            return;
        }
        var parser = new ReasoningParser(setup.StartsInReasoning);
        using var cts = new CancellationTokenSource();
        _generating = cts;
        CompletionStats stats;
        view.BeginReply();
        try
        {
            stats = Completion.Run(session, lm, ids, sampler, Math.Min(maxTokens, session.ContextSize - ids.Length), parser,
                setup.CreateBudget(lm), (_, delta) => view.Token(delta), cts.Token, spec);
        }
        finally
        {
            _generating = null;
        }
        view.EndReply(stats);
        if (stats.Cancelled && parser.Content.Length == 0)
        {
            // stopped before any answer: the question is taken back
            _turns.RemoveAt(_turns.Count - 1);
            return;
        }
        _turns.Add(new Turn(ChatMessage.Assistant(parser.Content), parser.Reasoning));
    }

    /// <summary>The conversation in the API's shape: messages with role, content and (for replies) reasoning_content.</summary>
    private void Save(string path)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("model", modelName);
        w.WriteStartArray("messages");
        foreach (var t in _turns)
        {
            w.WriteStartObject();
            w.WriteString("role", t.Message.Role);
            w.WriteString("content", t.Message.Content);
            if (!string.IsNullOrEmpty(t.Reasoning)) w.WriteString("reasoning_content", t.Reasoning);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
