// chat: an interactive conversation in the model's chat format (detected, or --template). Without --model it runs the
// default model from models/; where none is installed it synthesizes a tiny random-weight model and says so.
// On a terminal the reasoning shows live, dimmed, and collapses to a summary line (ChatView); through a pipe each
// reply is plain text with the reasoning between <think> and </think> lines, and the end of the input ends the chat.
using System.CommandLine;
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
        var speculation = new SpeculationFlags();
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cacheType = CliCommon.CacheTypeOption();
        var cmd = new Command("chat", "chat with a model (default: the embedded model in models/)") { model, maxTokens, ctx, threads, mmap };
        format.AddTo(cmd);
        sampling.AddTo(cmd);
        speculation.AddTo(cmd);
        cacheType.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var kvType = cacheType.Parse(r);
            var flags = format.Read(r);
            var sp = sampling.Read(r);
            var specChoice = speculation.Read(r);
            if (r.GetValue(maxTokens) < 1) throw new ArgumentException("--max-tokens must be >= 1");
            string path = r.GetValue(model) ?? DefaultModel.Resolve(Console.Error);
            if (!File.Exists(path)) throw new FileNotFoundException($"model file not found: {path}");
            bool terminal = !Console.IsInputRedirected && !Console.IsOutputRedirected;
            using var lm = CliProgress.LoadModel(path, r.GetValue(threads), r.GetValue(mmap));
            var setup = ChatFormatOptions.Resolve(flags, lm);
            int contextSize = Math.Min(Math.Max(r.GetValue(ctx), 64), lm.Config.ContextLength);
            using var session = new InferenceSession(lm.Model, contextSize, kvType.K, kvType.V);
            using var source = SpeculationFlags.Create(specChoice, lm)?.Source;
            using var spec = source is null ? null : new Speculator(SpeculationFlags.Options(specChoice, source), contextSize);
            bool color = Environment.GetEnvironmentVariable("NO_COLOR") is null;
            ChatView view = terminal
                ? new TerminalChatView(Console.Out, color)
                : new PlainChatView(Console.Out, Console.Error, dim: color && !Console.IsOutputRedirected, interactive: !Console.IsInputRedirected);
            return new ChatRepl(lm, Path.GetFileName(path), session, new Sampler(sp), setup, r.GetValue(maxTokens), view, Console.In, spec).Run();
        }));
        return cmd;
    }
}

/// <summary>
/// Finds the default model: models/r1sharp-arith.gguf (beside the binary, else under the current directory), else any
/// other .gguf there (in name order), else a tiny random-weight stand-in. models/ also holds the smaller draft model
/// that shares its vocabulary (r1sharp-arith-draft.gguf), which is never the default.
/// </summary>
internal static class DefaultModel
{
    public const string FileName = "r1sharp-arith.gguf";

    public static string Resolve(TextWriter log)
    {
        string[] dirs = [Path.Combine(AppContext.BaseDirectory, "models"), Path.Combine(Environment.CurrentDirectory, "models")];
        foreach (string dir in dirs)
            if (File.Exists(Path.Combine(dir, FileName))) return Path.Combine(dir, FileName);
        foreach (string dir in dirs)
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
