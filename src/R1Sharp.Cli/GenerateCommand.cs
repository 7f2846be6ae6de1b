// generate: one completion of a prompt, streamed to stdout. The chat template is applied unless --raw.
// Without --model it runs the default model from models/, as chat does.
using System.CommandLine;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Sampling;

namespace R1Sharp.Cli;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption(required: false);
        var prompt = new Option<string>("--prompt", "-p") { Description = "the prompt text", Required = true };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "most tokens to generate", DefaultValueFactory = _ => 512 };
        var raw = new Option<bool>("--raw") { Description = "feed the prompt as it is, without the chat template" };
        var ctx = new Option<int>("--ctx", "-c") { Description = "context size in tokens (default: prompt + max tokens, at most the model's)" };
        var sampling = new SamplingOptions();
        var threads = CliCommon.ThreadsOption();
        var cmd = new Command("generate", "generate a completion for a prompt") { model, prompt, maxTokens, raw, ctx, threads };
        sampling.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            int max = r.GetValue(maxTokens);
            if (max < 0) throw new ArgumentException("--max-tokens must be >= 0");
            var sp = sampling.Read(r);
            using var lm = LoadedModel.Load(r.GetValue(model) ?? DefaultModel.Resolve(Console.Error), r.GetValue(threads));
            string text = r.GetValue(prompt)!;
            int[] ids = r.GetValue(raw)
                ? lm.Tokenizer.Encode(text, addBos: lm.Tokenizer.AddBos)
                : lm.Tokenizer.Encode(R1ChatTemplate.Render([ChatMessage.User(text)], lm.Tokenizer.IdToToken(lm.Tokenizer.BosId), addGenerationPrompt: true));
            if (ids.Length == 0) throw new ArgumentException("the prompt is empty");
            int contextSize = r.GetValue(ctx) is int c && c > 0 ? c : Math.Min(lm.Config.ContextLength, ids.Length + Math.Max(max, 1));
            if (ids.Length >= contextSize)
                throw new ArgumentException($"the prompt has {ids.Length} tokens, which does not fit a context of {contextSize}");

            using var session = new InferenceSession(lm.Model, contextSize);
            var decoder = lm.Tokenizer.CreateStreamingDecoder();
            var stdout = Console.Out;
            foreach (int id in session.Generate(ids, new Sampler(sp), max, lm.IsEndOfGeneration))
            {
                if (lm.IsEndOfGeneration(id)) break;
                stdout.Write(decoder.Push(id));
                stdout.Flush();
            }
            stdout.Write(decoder.Flush());
            stdout.WriteLine();
            return 0;
        }));
        return cmd;
    }
}

/// <summary>The sampling flags of generate and chat.</summary>
internal sealed class SamplingOptions
{
    private readonly Option<float> _temperature = new("--temperature", "--temp") { Description = "sampling temperature; 0 is greedy", DefaultValueFactory = _ => 0.6f };
    private readonly Option<float> _topP = new("--top-p") { Description = "nucleus sampling threshold", DefaultValueFactory = _ => 0.95f };
    private readonly Option<int> _topK = new("--top-k") { Description = "keep the K most likely tokens (0: all)", DefaultValueFactory = _ => 0 };
    private readonly Option<float> _minP = new("--min-p") { Description = "drop tokens below P times the top probability", DefaultValueFactory = _ => 0f };
    private readonly Option<float> _repeat = new("--repeat-penalty") { Description = "repetition penalty over the last 64 tokens (1: off)", DefaultValueFactory = _ => 1f };
    private readonly Option<float> _presence = new("--presence-penalty") { Description = "presence penalty (0: off)", DefaultValueFactory = _ => 0f };
    private readonly Option<ulong?> _seed = new("--seed", "-s") { Description = "random seed (default: a new one each run)" };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { _temperature, _topP, _topK, _minP, _repeat, _presence, _seed }) cmd.Options.Add(o);
    }

    public SamplingParams Read(ParseResult r)
    {
        var p = new SamplingParams
        {
            Temperature = r.GetValue(_temperature),
            TopP = r.GetValue(_topP),
            TopK = r.GetValue(_topK),
            MinP = r.GetValue(_minP),
            RepetitionPenalty = r.GetValue(_repeat),
            PresencePenalty = r.GetValue(_presence),
            Seed = r.GetValue(_seed) ?? (ulong)Random.Shared.NextInt64(),
        };
        p.Validate();
        return p;
    }
}
