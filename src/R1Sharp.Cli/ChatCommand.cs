// chat: an interactive conversation in the model's chat format (detected, or --template). Without --model it runs the
// default model from models/; where none is installed it synthesizes a tiny random-weight model and says so.
// Each reply shows the reasoning between <think> and </think> lines (dimmed on a terminal), then the answer; only the
// answer goes back into the conversation, as the API does with reasoning_content.
using System.CommandLine;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Models;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

namespace R1Sharp.Cli;

internal static class ChatCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption(required: false);
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "most tokens per answer", DefaultValueFactory = _ => 1024 };
        var ctx = new Option<int>("--ctx", "-c") { Description = "context size in tokens", DefaultValueFactory = _ => 4096 };
        var format = new ChatFormatOptions();
        var sampling = new SamplingOptions();
        var threads = CliCommon.ThreadsOption();
        var cmd = new Command("chat", "chat with a model (default: the embedded model in models/)") { model, maxTokens, ctx, threads };
        format.AddTo(cmd);
        sampling.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var flags = format.Read(r);
            var sp = sampling.Read(r);
            string path = r.GetValue(model) ?? DefaultModel.Resolve(Console.Error);
            using var lm = LoadedModel.Load(path, r.GetValue(threads));
            var setup = ChatFormatOptions.Resolve(flags, lm);
            int contextSize = Math.Min(Math.Max(r.GetValue(ctx), 64), lm.Config.ContextLength);
            using var session = new InferenceSession(lm.Model, contextSize);
            var sampler = new Sampler(sp);
            var messages = new List<ChatMessage>();
            bool interactive = !Console.IsInputRedirected;
            bool dim = !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;
            if (interactive)
                Console.Error.WriteLine($"{Path.GetFileName(path)} ({ChatTemplates.Name(setup.Kind)} format): type a message, /reset to start over, /exit or Ctrl+D to quit.");

            while (true)
            {
                if (interactive) Console.Write("> ");
                string? line = Console.ReadLine();
                if (line is null || line.Trim() == "/exit") return 0;
                if (line.Trim().Length == 0) continue;
                if (line.Trim() == "/reset") { messages.Clear(); continue; }

                messages.Add(ChatMessage.User(line));
                int[] ids = lm.Tokenizer.Encode(setup.Render(messages, lm));
                if (ids.Length >= contextSize)
                {
                    Console.Error.WriteLine($"error: the conversation ({ids.Length} tokens) no longer fits the context of {contextSize}; /reset to start over");
                    messages.RemoveAt(messages.Count - 1);
                    continue;
                }
                session.Reset();
                var parser = new ReasoningParser(setup.StartsInReasoning);
                var stdout = Console.Out;
                bool inThink = false;
                Completion.Run(session, lm, ids, sampler, Math.Min(r.GetValue(maxTokens), contextSize - ids.Length), parser,
                    setup.CreateBudget(lm), (_, delta) =>
                    {
                        if (delta.Reasoning.Length > 0)
                        {
                            if (!inThink) { stdout.Write(dim ? "\x1b[2m<think>\n" : "<think>\n"); inThink = true; }
                            stdout.Write(delta.Reasoning);
                        }
                        if (delta.Content.Length > 0)
                        {
                            if (inThink) { stdout.Write(dim ? "\n</think>\x1b[0m\n\n" : "\n</think>\n\n"); inThink = false; }
                            stdout.Write(delta.Content);
                        }
                        stdout.Flush();
                    });
                if (inThink) stdout.Write(dim ? "\n</think>\x1b[0m\n" : "\n</think>\n");   // no answer came
                else stdout.WriteLine();
                messages.Add(ChatMessage.Assistant(parser.Content));
            }
        }));
        return cmd;
    }
}

/// <summary>Finds the default model: the .gguf shipped in models/, else a tiny random-weight stand-in.</summary>
internal static class DefaultModel
{
    public static string Resolve(TextWriter log)
    {
        foreach (string dir in new[] { Path.Combine(AppContext.BaseDirectory, "models"), Path.Combine(Environment.CurrentDirectory, "models") })
        {
            if (!Directory.Exists(dir)) continue;
            var found = Directory.GetFiles(dir, "*.gguf").OrderBy(f => f, StringComparer.Ordinal).FirstOrDefault();
            if (found != null) return found;
        }
        string cache = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "r1sharp");
        Directory.CreateDirectory(cache);
        string path = Path.Combine(cache, "tiny-random-qwen2.gguf");
        log.WriteLine("note: no trained model in models/; using a tiny model with RANDOM weights (its output is gibberish).");
        if (!File.Exists(path))
        {
            string tmp = path + $".{Environment.ProcessId}.tmp";
            Synthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), GgmlType.F32, 1, tmp);
            File.Move(tmp, path, overwrite: true);
        }
        return path;
    }
}
