// The speculative-decoding flags of generate, chat, bench and serve: --draft-model PATH (a smaller model with the
// same vocabulary), --spec ngram|mtp (no second model), --draft-max N (most draft tokens per pass) and
// --draft-p-min P (the draft stops when its confidence falls below P).
using System.CommandLine;
using R1Sharp.Engine;

namespace R1Sharp.Cli;

internal sealed class SpeculationFlags
{
    private readonly Option<string?> _draftModel = new("--draft-model", "-md")
    {
        Description = "speculative decoding with this smaller model (same vocabulary) drafting tokens for the model to verify",
    };
    private readonly Option<string?> _spec = new("--spec")
    {
        Description = "speculative decoding without a second model: ngram (drafts copied from earlier in the text) or mtp (the model's own multi-token-prediction layer, deepseek2 files that have one)",
        HelpName = "ngram|mtp",
    };
    private readonly Option<int> _draftMax = new("--draft-max")
    {
        Description = "most draft tokens verified per pass (the length adapts to the acceptance below it)",
        DefaultValueFactory = _ => 8,
    };
    private readonly Option<float> _pMin = new("--draft-p-min")
    {
        Description = "a draft model or MTP layer stops drafting when its most likely token is less likely than this",
        DefaultValueFactory = _ => DraftModelSource.DefaultPMin,
    };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { _draftModel, _spec, _draftMax, _pMin }) cmd.Options.Add(o);
    }

    /// <summary>What the flags ask for, checked before any model is loaded.</summary>
    public sealed record Choice(string? Kind, string? DraftModel, int DraftMax, float PMin)
    {
        public bool Speculates => Kind != null || DraftModel != null;
    }

    public Choice Read(ParseResult r)
    {
        string? kind = r.GetValue(_spec), draft = r.GetValue(_draftModel);
        int max = r.GetValue(_draftMax);
        float pMin = r.GetValue(_pMin);
        if (kind is not (null or "ngram" or "mtp")) throw new ArgumentException($"--spec: '{kind}' is not a kind of speculation; use ngram or mtp (or --draft-model PATH)");
        if (kind != null && draft != null) throw new ArgumentException("--spec and --draft-model are two ways to draft: give one");
        if (max < 1) throw new ArgumentException($"--draft-max must be at least 1 (got {max})");
        if (!(pMin >= 0 && pMin <= 1)) throw new ArgumentException($"--draft-p-min must be in [0, 1] (got {pMin})");
        if (draft != null && !File.Exists(draft)) throw new FileNotFoundException($"draft model file not found: {draft}");
        return new Choice(kind, draft, max, pMin);
    }

    /// <summary>The speculation the choice names for <paramref name="target"/> (its source owns a draft model it loads), or null.</summary>
    public static SpeculationOptions? Create(Choice c, LoadedModel target, bool reportPlain = false)
    {
        IDraftSource? source = c.Kind switch
        {
            "ngram" => new NgramSource(),
            "mtp" => new MtpSource(target.Model, target.Tokenizer.EndOfGeneration, c.PMin),
            _ when c.DraftModel != null => CliProgress.LoadDraft(c.DraftModel, target, c.PMin, reportPlain),
            _ => null,
        };
        return source is null ? null : Options(c, source);
    }

    public static SpeculationOptions Options(Choice c, IDraftSource source) => new() { Source = source, DraftMax = c.DraftMax };
}
