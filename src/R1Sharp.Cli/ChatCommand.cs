// chat: an interactive conversation in the R1 format. Without --model it runs the default model from models/;
// where none is installed it synthesizes a tiny random-weight model and says so.
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
        var sampling = new SamplingOptions();
        var threads = CliCommon.ThreadsOption();
        var cmd = new Command("chat", "chat with a model (default: the embedded model in models/)") { model, maxTokens, ctx, threads };
        sampling.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string path = r.GetValue(model) ?? DefaultModel.Resolve(Console.Error);
            var sp = sampling.Read(r);
            using var lm = LoadedModel.Load(path, r.GetValue(threads));
            int contextSize = Math.Min(Math.Max(r.GetValue(ctx), 64), lm.Config.ContextLength);
            using var session = new InferenceSession(lm.Model, contextSize);
            var sampler = new Sampler(sp);
            var messages = new List<ChatMessage>();
            string bos = lm.Tokenizer.IdToToken(lm.Tokenizer.BosId);
            bool interactive = !Console.IsInputRedirected;
            if (interactive) Console.Error.WriteLine($"{Path.GetFileName(path)}: type a message, /reset to start over, /exit or Ctrl+D to quit.");

            while (true)
            {
                if (interactive) Console.Write("> ");
                string? line = Console.ReadLine();
                if (line is null || line.Trim() == "/exit") return 0;
                if (line.Trim().Length == 0) continue;
                if (line.Trim() == "/reset") { messages.Clear(); continue; }

                messages.Add(ChatMessage.User(line));
                int[] ids = lm.Tokenizer.Encode(R1ChatTemplate.Render(messages, bos, addGenerationPrompt: true));
                if (ids.Length >= contextSize)
                {
                    Console.Error.WriteLine($"error: the conversation ({ids.Length} tokens) no longer fits the context of {contextSize}; /reset to start over");
                    messages.RemoveAt(messages.Count - 1);
                    continue;
                }
                session.Reset();
                var decoder = lm.Tokenizer.CreateStreamingDecoder();
                var answer = new System.Text.StringBuilder();
                Console.WriteLine("<think>");
                foreach (int id in session.Generate(ids, sampler, Math.Min(r.GetValue(maxTokens), contextSize - ids.Length), lm.IsEndOfGeneration))
                {
                    if (lm.IsEndOfGeneration(id)) break;
                    string piece = decoder.Push(id);
                    answer.Append(piece);
                    Console.Write(piece);
                    Console.Out.Flush();
                }
                string tail = decoder.Flush();
                answer.Append(tail);
                Console.WriteLine(tail);
                messages.Add(ChatMessage.Assistant(answer.ToString()));
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
