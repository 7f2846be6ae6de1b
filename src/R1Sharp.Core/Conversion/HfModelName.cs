// general.name, basename, finetune, version and size_label of a converted model, derived as llama.cpp's gguf-py
// derives them without a model card: from config.json's _name_or_path when it is a Hub id, else from the folder
// name ("DeepSeek-R1-Distill-Qwen-1.5B" → basename DeepSeek-R1-Distill-Qwen, size 1.5B), and the size label from
// the parameter count when the name carries none.
using System.Globalization;
using System.Text.RegularExpressions;

namespace R1Sharp.Conversion;

public sealed record HfModelName(string Name, string? Organization, string? Basename, string? Finetune, string? Version, string? SizeLabel)
{
    /// <param name="nameOrPath">config.json's _name_or_path, used when it has at most one '/'.</param>
    /// <param name="folder">The checkpoint folder's name.</param>
    /// <param name="totalParams">Parameters of the converted tensors.</param>
    /// <param name="expertParams">Parameters of one expert summed over the expert tensors (0 without experts).</param>
    /// <param name="expertCount">Experts per expert tensor (0 without experts).</param>
    public static HfModelName Derive(string? nameOrPath, string folder, long totalParams, long sharedParams, long expertParams, int expertCount)
    {
        string? name = null, org = null, basename = null, finetune = null, version = null, size = null;
        void Apply(string id)
        {
            var (full, o, b, f, v, s) = Components(id, totalParams);
            if (name is null && full is not null) name = IdToTitle(full);
            if (org is null && o is not null) org = IdToTitle(o);
            basename ??= b;
            finetune ??= f;
            version ??= v;
            size ??= s;
        }
        if (nameOrPath is not null && nameOrPath.Count(c => c == '/') <= 1) Apply(nameOrPath);
        Apply(folder);
        size ??= expertCount > 0
            ? $"{expertCount}x{Rounded(Math.Abs(sharedParams) + Math.Abs(expertParams))}"
            : Rounded(Math.Abs(totalParams));
        return new HfModelName(name ?? folder, org, basename, finetune, version, size);
    }

    /// <summary>gguf-py's model_weight_count_rounded_notation with two significant digits at least.</summary>
    public static string Rounded(long count)
    {
        (double scaled, string suffix) = count > 1e12 ? (count * 1e-12, "T") : count > 1e9 ? (count * 1e-9, "B") : count > 1e6 ? (count * 1e-6, "M") : (count * 1e-3, "K");
        int digits = Math.Round(scaled, MidpointRounding.ToEven).ToString(CultureInfo.InvariantCulture).TrimStart('0').Length;
        int fix = Math.Max(2 - digits, 0);
        return scaled.ToString("F" + fix, CultureInfo.InvariantCulture) + suffix;
    }

    /// <summary>"deepseek-r1" → "Deepseek R1": lower-case words capitalized, versions and numbers kept.</summary>
    public static string IdToTitle(string s) =>
        string.Join(' ', s.Trim().Replace('-', ' ').Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(w => w.Any(char.IsLetter) && w == w.ToLowerInvariant() && !Regex.IsMatch(w, @"^(v\d+(?:\.\d+)*|\d.*)$")
                ? Title(w) : w));

    // Python's str.title(): a letter after a non-letter is upper-cased, every other letter lower-cased
    private static string Title(string w)
    {
        var c = w.ToCharArray();
        bool prevLetter = false;
        for (int i = 0; i < c.Length; i++)
        {
            c[i] = prevLetter ? char.ToLowerInvariant(c[i]) : char.ToUpperInvariant(c[i]);
            prevLetter = char.IsLetter(c[i]);
        }
        return new string(c);
    }

    private static (string? Full, string? Org, string? Basename, string? Finetune, string? Version, string? Size) Components(string id, long totalParams)
    {
        if (id.Contains(' ')) return (id, null, null, null, null, null);
        string? org = null;
        string full = id;
        int slash = id.IndexOf('/');
        if (slash >= 0)
        {
            org = id[..slash];
            full = id[(slash + 1)..];
            if (org.Length > 0 && org[0] == '.') org = null;
        }
        var parts = full.Split('-').Where(p => p.Length > 0).ToList();
        var kinds = parts.Select(_ => new HashSet<string>()).ToList();
        for (int i = 0; i < parts.Count; i++)
        {
            string part = parts[i];
            if (Regex.IsMatch(part, @"^(v|iter)?\d+([.]\d+)*$", RegexOptions.IgnoreCase)) kinds[i].Add("version");
            else if (Regex.IsMatch(part, @"^(i?q\d(_\w)*|b?fp?(16|32))$", RegexOptions.IgnoreCase))
            {
                kinds[i].Add("type");
                parts[i] = part.ToUpperInvariant();
            }
            else if (i > 0 && Regex.IsMatch(part, @"^(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)$", RegexOptions.IgnoreCase))
            {
                part = part.Replace('_', '.');
                if (char.IsDigit(part[^1])) part = part[..^2] + "." + part[^1] + part[^2];
                if (part.Length > 1 && char.IsDigit(part[^2]) && "kmbt".Contains(part[^1])) part = part[..^1] + char.ToUpperInvariant(part[^1]);
                if (totalParams != 0 && double.TryParse(part[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double label)
                    && " KMBT".IndexOf(part[^1]) is int p and >= 0)
                {
                    double labelParams = label * Math.Pow(1000, p);
                    if (totalParams > 0 && Math.Abs(labelParams - totalParams) > 7 * totalParams / 8)
                    {
                        kinds[i].Add("finetune");
                        part = part[..^1] + char.ToLowerInvariant(part[^1]);
                    }
                }
                if (kinds[i].Count == 0) kinds[i].Add("size_label");
                parts[i] = part;
            }
            else if (i > 0 && Regex.IsMatch(part, "^(chat|instruct|vision|lora)$", RegexOptions.IgnoreCase)) kinds[i].Add("finetune");
        }
        // word sizes (small, large) give way to a numeric one
        if (parts.Where((p, i) => kinds[i].Contains("size_label")).Any(p => p.Any(char.IsDigit)))
            for (int i = 0; i < parts.Count; i++)
                if (kinds[i].Contains("size_label") && parts[i].All(char.IsLetter)) kinds[i].Remove("size_label");
        bool atStart = true;
        for (int i = 0; i < parts.Count; i++)
        {
            if (atStart && ((kinds[i].Count == 0 && char.IsLetter(parts[i][0])) || kinds[i].Contains("version"))) kinds[i].Add("basename");
            else
            {
                atStart = false;
                if (kinds[i].Count == 0) kinds[i].Add("finetune");
            }
        }
        for (int i = parts.Count - 1; i >= 0; i--)
        {
            if (kinds[i].Contains("basename") && kinds[i].Count > 1) kinds[i].Remove("basename");
            else break;
        }
        string? Join(Func<int, bool> pick, bool distinct = false)
        {
            var sel = parts.Where((_, i) => pick(i));
            if (distinct) sel = sel.Distinct();
            string s = string.Join("-", sel);
            return s.Length == 0 ? null : s;
        }
        string? basename = Join(i => kinds[i].Contains("basename"));
        string? size = Join(i => kinds[i].Contains("size_label"), distinct: true);
        string? finetune = Join(i => kinds[i].Contains("finetune"));
        string? version = Join(i => kinds[i].Contains("version") && !kinds[i].Contains("basename"));
        if (size is null && finetune is null && version is null) basename = null;
        return (full, org, basename, finetune, version, size);
    }
}
