// eval: accuracy of a model on held-out problems of a task (seeds disjoint from training): pass@1 over k samples
// and cons@k (majority vote), with --json one object on stdout.
using System.CommandLine;
using System.Text.Json;
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Training;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Cli;

internal static class EvalCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption(required: false);
        var task = new Option<string>("--task") { Description = $"task: {string.Join(", ", TaskRegistry.Names)}", DefaultValueFactory = _ => "arithmetic" };
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 200, Description = "held-out problems" };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => 4, Description = "samples per problem (cons@k votes over them)" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0, Description = "selects the held-out problems" };
        var temperature = new Option<float>("--temperature") { DefaultValueFactory = _ => 0.6f };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 0.95f };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var show = new Option<int>("--show-failures") { DefaultValueFactory = _ => 0, Description = "print up to N wrong completions on stderr" };
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cmd = new Command("eval", "pass@1 and cons@k on held-out problems of a task") { model, task, n, k, seed, temperature, topP, maxTokens, json, show, threads, mmap };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var t = TaskRegistry.Get(r.GetValue(task)!);
            if (r.GetValue(n) <= 0 || r.GetValue(k) <= 0) throw new ArgumentException("--n and --k must be positive");
            string path = r.GetValue(model) ?? DefaultModel.Resolve(Console.Error);
            var sp = new SamplingParams { Temperature = r.GetValue(temperature), TopP = r.GetValue(topP), Seed = r.GetValue(seed) };
            sp.Validate();
            using var lm = LoadedModel.Load(path, r.GetValue(threads), r.GetValue(mmap));
            var res = Evaluator.Run(lm, t, r.GetValue(n), r.GetValue(k), sp, r.GetValue(seed), r.GetValue(maxTokens));
            foreach (var (prompt, completion) in res.Failures.Take(r.GetValue(show)))
                Console.Error.WriteLine($"--- {prompt}\n{completion}");
            if (r.GetValue(json))
            {
                var obj = new Dictionary<string, object>
                {
                    ["model"] = path, ["task"] = res.Task, ["n"] = res.Problems, ["k"] = res.K, ["seed"] = r.GetValue(seed),
                    ["temperature"] = sp.Temperature, ["pass@1"] = Math.Round(res.PassAt1, 4), [$"cons@{res.K}"] = Math.Round(res.ConsAtK, 4),
                    ["format_rate"] = Math.Round(res.FormatRate, 4), ["mean_tokens"] = Math.Round(res.MeanLength, 1),
                    ["pass@1_by_kind"] = res.PassAt1ByKind.ToDictionary(e => e.Key, e => Math.Round(e.Value, 4)),
                };
                Console.WriteLine(JsonSerializer.Serialize(obj));
            }
            else
            {
                Console.WriteLine($"{res.Task}: {res.Problems} held-out problems x {res.K} samples (temperature {sp.Temperature})");
                Console.WriteLine($"pass@1 {res.PassAt1:F4}  cons@{res.K} {res.ConsAtK:F4}  format {res.FormatRate:F4}  mean tokens {res.MeanLength:F1}");
                foreach (var (kind, v) in res.PassAt1ByKind) Console.WriteLine($"  pass@1 {kind}: {v:F4}");
            }
            return 0;
        }));
        return cmd;
    }
}
