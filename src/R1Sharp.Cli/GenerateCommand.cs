// generate: one completion of a prompt, streamed. The chat template (detected, or --template) is applied unless --raw.
// --reasoning-format none (the default) prints the text as the model writes it, so nothing is hidden: when the
// prompt opened the think block, its "<think>\n" is echoed first so the output reads as one balanced block.
// --reasoning-format separate prints the reasoning to stderr and only the answer to stdout (`> answer.txt` keeps
// the answer), with the tags and the whitespace around them dropped as in the API's reasoning_content/content.
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
        var reasoningFormat = new Option<string>("--reasoning-format")
        {
            Description = "none: print the output as written, think tags included; separate: reasoning to stderr, answer to stdout",
            HelpName = "none|separate",
            DefaultValueFactory = _ => "none",
        };
        var format = new ChatFormatOptions();
        var sampling = new SamplingOptions();
        var speculation = new SpeculationFlags();
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cacheType = CliCommon.CacheTypeOption();
        var cmd = new Command("generate", "generate a completion for a prompt") { model, prompt, maxTokens, raw, ctx, reasoningFormat, threads, mmap };
        format.AddTo(cmd);
        sampling.AddTo(cmd);
        speculation.AddTo(cmd);
        cacheType.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var kvType = cacheType.Parse(r);
            int max = r.GetValue(maxTokens);
            if (max < 0) throw new ArgumentException("--max-tokens must be >= 0");
            bool isRaw = r.GetValue(raw);
            if (isRaw && format.NeedsTemplate(r)) throw new ArgumentException("--template and --no-think apply the chat template; drop --raw");
            bool separate = r.GetValue(reasoningFormat) switch
            {
                "none" => false,
                "separate" => true,
                var other => throw new ArgumentException($"--reasoning-format: '{other}' is not a format; use none or separate"),
            };
            var flags = format.Read(r);
            var sp = sampling.Read(r);
            var specChoice = speculation.Read(r);
            using var lm = CliProgress.LoadModel(r.GetValue(model) ?? DefaultModel.Resolve(Console.Error), r.GetValue(threads), r.GetValue(mmap));
            var setup = ChatFormatOptions.Resolve(flags, lm);
            string text = r.GetValue(prompt)!;
            int[] ids = isRaw
                ? lm.Tokenizer.Encode(text, addBos: lm.Tokenizer.AddBos)
                : lm.Tokenizer.Encode(setup.Render([ChatMessage.User(text)], lm));
            if (ids.Length == 0) throw new ArgumentException("the prompt is empty");
            int contextSize = r.GetValue(ctx) is int c && c > 0 ? c : Math.Min(lm.Config.ContextLength, ids.Length + Math.Max(max, 1));
            if (ids.Length >= contextSize)
                throw new ArgumentException($"the prompt has {ids.Length} tokens, which does not fit a context of {contextSize}");

            using var session = new InferenceSession(lm.Model, contextSize, kvType.K, kvType.V);
            using var source = SpeculationFlags.Create(specChoice, lm)?.Source;
            using var spec = source is null ? null : new Speculator(SpeculationFlags.Options(specChoice, source), contextSize);
            // a raw prompt is not known to open a think block; an explicit <think> in the output still counts
            bool startsInReasoning = !isRaw && setup.StartsInReasoning;
            var parser = new ReasoningParser(startsInReasoning);
            var stdout = Console.Out;
            var stderr = Console.Error;
            bool reasoningOpen = false;
            if (!separate && startsInReasoning) stdout.Write(R1ChatTemplate.ThinkOpen + "\n");
            Completion.Run(session, lm, ids, new Sampler(sp), max, parser, setup.CreateBudget(lm), (piece, delta) =>
            {
                if (!separate)
                {
                    stdout.Write(piece);
                    stdout.Flush();
                    return;
                }
                if (delta.Reasoning.Length > 0)
                {
                    stderr.Write(delta.Reasoning);
                    stderr.Flush();
                    reasoningOpen = true;
                }
                if (delta.Content.Length > 0)
                {
                    if (reasoningOpen) { stderr.WriteLine(); reasoningOpen = false; }
                    stdout.Write(delta.Content);
                    stdout.Flush();
                }
            }, spec: spec);
            if (reasoningOpen) stderr.WriteLine();
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
