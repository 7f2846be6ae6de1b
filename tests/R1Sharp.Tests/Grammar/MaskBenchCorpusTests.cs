// JSONSchemaBench's MaskBench corpus (11,305 real schemas with valid and invalid instances, from ../shared/data;
// absent in a fresh clone, then the test says so and passes without checking). Each schema is compiled; for each
// one compiled, every instance is tokenized with the Qwen2.5 tokenizer and fed token by token: no invalid
// instance may be accepted and every valid one must be (JSON objects being unordered, a valid instance whose members
// are not in the schema's property order counts when the same value in that order is accepted). On a tenth of the schemas the mask is also computed at
// each of the first 60 steps and must agree with IsAllowed. A CI-sized sample (150 schemas) runs by default;
// R1SHARP_MASKBENCH_SAMPLE=N samples N, R1SHARP_MASKBENCH_ALL=1 runs all 11,305.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using R1Sharp.Grammar;
using Xunit.Abstractions;

namespace R1Sharp.Tests.Grammar;

public sealed class MaskBenchCorpusTests(ITestOutputHelper output)
{
    private const string FileName = "jsonschemabench-maskbench.json.xz";
    // schemas in the suite's sample (evenly spaced in name order); R1SHARP_MASKBENCH_SAMPLE=N or _ALL=1 for more
    private const int DefaultSample = 150;

    internal static string? FindCorpus()
    {
        if (Environment.GetEnvironmentVariable("R1SHARP_MASKBENCH") is { Length: > 0 } env) return File.Exists(env) ? env : null;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "shared", "data", FileName);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    internal static JsonDocument? Load(out string why)
    {
        string? path = FindCorpus();
        if (path is null) { why = $"{FileName} not found in a shared/data folder above {AppContext.BaseDirectory} (a fresh clone has none)"; return null; }
        var psi = new ProcessStartInfo("xz", ["-dc", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        try
        {
            using var p = Process.Start(psi)!;
            var ms = new MemoryStream();
            var copy = p.StandardOutput.BaseStream.CopyToAsync(ms);
            _ = p.StandardError.ReadToEndAsync();
            copy.Wait();
            p.WaitForExit();
            if (p.ExitCode != 0) { why = $"xz -dc {path} failed (exit {p.ExitCode})"; return null; }
            why = "";
            return JsonDocument.Parse(ms.ToArray(), new JsonDocumentOptions { MaxDepth = 2048 });
        }
        catch (System.ComponentModel.Win32Exception e) { why = $"xz could not be started ({e.Message})"; return null; }
    }

    internal static string SourceOf(string name) => name.Contains("---") ? name[..name.IndexOf("---")] : name.Split('_')[0];

    [Fact]
    public void CompiledSchemasAcceptExactlyTheValidInstances()
    {
        using var doc = Load(out string why);
        if (doc is null)
        {
            output.WriteLine($"SKIPPED: {why}");
            return;
        }
        bool all = Environment.GetEnvironmentVariable("R1SHARP_MASKBENCH_ALL") == "1";
        int sample = int.TryParse(Environment.GetEnvironmentVariable("R1SHARP_MASKBENCH_SAMPLE"), out int n) && n > 0 ? n : DefaultSample;
        var entries = doc.RootElement.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
        int step = all ? 1 : Math.Max(1, entries.Count / sample);
        var tok = GrammarTestVocab.QwenTokenizer;
        var vocab = GrammarTestVocab.Qwen;
        var perSource = new SortedDictionary<string, (int Total, int Compiled)>(StringComparer.Ordinal);
        var refusals = new Dictionary<string, int>();
        var failures = new List<string>();
        int validChecked = 0, invalidChecked = 0, maskChecks = 0, sampled = 0, reorderedValid = 0;
        var mask = new ulong[vocab.MaskWords];
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < entries.Count; i += step)
        {
            sampled++;
            var (name, entry) = (entries[i].Name, entries[i].Value);
            string source = SourceOf(name);
            var (total, compiled) = perSource.GetValueOrDefault(source);
            CompiledGrammar g;
            try
            {
                g = CompiledGrammar.Create(JsonSchemaCompiler.Compile(JsonText.Canonical(entry.GetProperty("schema"))), vocab);
            }
            catch (GrammarException e)
            {
                perSource[source] = (total + 1, compiled);
                string key = e is UnsupportedSchemaException u ? u.Keyword : "error: " + (e.Message.Length > 50 ? e.Message[..50] : e.Message);
                refusals[key] = refusals.GetValueOrDefault(key) + 1;
                continue;
            }
            perSource[source] = (total + 1, compiled + 1);
            bool checkMasks = sampled % 10 == 0;
            foreach (var test in entry.GetProperty("tests").EnumerateArray())
            {
                bool valid = test.GetProperty("valid").GetBoolean();
                string text = JsonText.Canonical(test.GetProperty("data"));
                int[] ids = tok.Encode(text, parseSpecial: false);
                var m = g.CreateMatcher();
                bool accepted = true;
                foreach (int id in ids)
                {
                    if (checkMasks && valid && m.TokenCount < 60)
                    {
                        m.FillMask(mask);
                        maskChecks++;
                        if ((mask[id >> 6] >> (id & 63) & 1) != (m.IsAllowed(id) ? 1UL : 0UL))
                            failures.Add($"{name}: the mask and IsAllowed disagree on token {id} after {m.TokenCount} tokens of {Shorten(text)}");
                    }
                    if (!m.Accept(id)) { accepted = false; break; }
                }
                accepted = accepted && m.IsComplete;
                if (valid && !accepted)
                {
                    // JSON objects are unordered and the grammar writes declared properties in the schema's order:
                    // the same value with its members in that order must be accepted
                    string reordered = JsonText.Canonical(SchemaOrder(System.Text.Json.Nodes.JsonNode.Parse(test.GetProperty("data").GetRawText()),
                        entry.GetProperty("schema")));
                    if (reordered != text && Accepts(g, tok.Encode(reordered, parseSpecial: false)))
                    {
                        accepted = true;
                        reorderedValid++;
                    }
                }
                if (valid) validChecked++;
                else invalidChecked++;
                if (accepted != valid)
                    failures.Add($"{name}: {(valid ? "valid instance rejected" : "INVALID instance accepted")}: {Shorten(text)}");
            }
        }
        output.WriteLine($"{sampled} of {entries.Count} schemas (every {step}), {validChecked} valid and {invalidChecked} invalid instances, {maskChecks} masks checked, {sw.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"{reorderedValid} valid instances accepted once their members were put in the schema's property order");
        int sumTotal = 0, sumCompiled = 0;
        foreach (var (source, (total, compiled)) in perSource)
        {
            output.WriteLine($"  {source,-16} {compiled,5} / {total,5} compiled ({100.0 * compiled / total:F1}%)");
            sumTotal += total;
            sumCompiled += compiled;
        }
        output.WriteLine($"  {"all",-16} {sumCompiled,5} / {sumTotal,5} compiled ({100.0 * sumCompiled / sumTotal:F1}%)");
        output.WriteLine("refused by keyword: " + string.Join(", ", refusals.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}")));
        foreach (string f in failures.Take(40)) output.WriteLine(f);
        Assert.True(failures.Count == 0, $"{failures.Count} failures, first: {failures.FirstOrDefault()}");
        Assert.True(sumCompiled > 0);
    }

    private static bool Accepts(CompiledGrammar g, int[] ids)
    {
        var m = g.CreateMatcher();
        foreach (int id in ids) if (!m.Accept(id)) return false;
        return m.IsComplete;
    }

    // The instance with each object's members in the order the grammar writes them: those of the schema's "properties"
    // object that declares most of them (found anywhere in the schema) in its order, then the others in ordinal order.
    private static System.Text.Json.Nodes.JsonNode? SchemaOrder(System.Text.Json.Nodes.JsonNode? node, JsonElement schema)
    {
        var propertyLists = new List<List<string>>();
        Collect(schema);
        return Reorder(node);

        void Collect(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Object)
                foreach (var p in e.EnumerateObject())
                {
                    if (p.Name == "properties" && p.Value.ValueKind == JsonValueKind.Object)
                        propertyLists.Add(p.Value.EnumerateObject().Select(x => x.Name).ToList());
                    Collect(p.Value);
                }
            else if (e.ValueKind == JsonValueKind.Array)
                foreach (var x in e.EnumerateArray()) Collect(x);
        }

        System.Text.Json.Nodes.JsonNode? Reorder(System.Text.Json.Nodes.JsonNode? n)
        {
            switch (n)
            {
                case System.Text.Json.Nodes.JsonObject o:
                {
                    var keys = o.Select(kv => kv.Key).ToList();
                    var best = propertyLists.OrderByDescending(l => keys.Count(l.Contains)).FirstOrDefault() ?? [];
                    var ordered = best.Where(keys.Contains).Concat(keys.Where(k => !best.Contains(k)).Order(StringComparer.Ordinal)).ToList();
                    var r = new System.Text.Json.Nodes.JsonObject();
                    foreach (string k in ordered) r[k] = Reorder(o[k]?.DeepClone());
                    return r;
                }
                case System.Text.Json.Nodes.JsonArray a:
                    return new System.Text.Json.Nodes.JsonArray(a.Select(x => Reorder(x?.DeepClone())).ToArray());
                default:
                    return n?.DeepClone();
            }
        }
    }

    private static string Shorten(string s) => s.Length > 160 ? s[..160] + "..." : s;
}
