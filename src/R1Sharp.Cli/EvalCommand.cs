// eval: accuracy of a model on held-out problems of a task (seeds disjoint from training): pass@1 over k samples
// and cons@k (majority vote), per category where the task has them; with --baseline a second model on the same
// problems and the paired gain (mean of per-problem differences ± 1.96·sd/√n); with --json one object on stdout.
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
        var format = new Option<int?>("--format") { Description = "arithmetic: the worked-solution format the model was trained on (1 or 2, default 2); first_errors compare with it" };
        var baseFormat = new Option<int?>("--baseline-format") { Description = "arithmetic: the baseline's format (default: --format)" };
        var n = new Option<int>("--n") { DefaultValueFactory = _ => 200, Description = "held-out problems" };
        var k = new Option<int>("--k") { DefaultValueFactory = _ => 4, Description = "samples per problem (cons@k votes over them)" };
        var seed = new Option<ulong>("--seed") { DefaultValueFactory = _ => 0, Description = "selects the held-out problems" };
        var temperature = new Option<float>("--temperature") { DefaultValueFactory = _ => 0.6f };
        var topP = new Option<float>("--top-p") { DefaultValueFactory = _ => 0.95f };
        var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 1024 };
        var baseline = new Option<string?>("--baseline") { Description = "a second model evaluated on the same problems; reports the paired gain" };
        var json = new Option<bool>("--json") { Description = "print one JSON object" };
        var show = new Option<int>("--show-failures") { DefaultValueFactory = _ => 0, Description = "print up to N wrong completions on stderr" };
        var perProblem = new Option<bool>("--per-problem") { Description = "with --json: each problem's pass@1 too, in problem order (to pair evaluations made apart)" };
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cmd = new Command("eval", "pass@1 and cons@k on held-out problems of a task") { model, task, format, baseFormat, n, k, seed, temperature, topP, maxTokens, baseline, json, show, perProblem, threads, mmap };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var t = TaskRegistry.Get(r.GetValue(task)!, r.GetValue(format));
            var bt = r.GetValue(baseFormat) is { } bf ? TaskRegistry.Get(r.GetValue(task)!, bf) : t;
            if (r.GetValue(n) <= 0 || r.GetValue(k) <= 0) throw new ArgumentException("--n and --k must be positive");
            if (r.GetValue(maxTokens) <= 0) throw new ArgumentException("--max-tokens must be positive");
            if (r.GetValue(perProblem) && !r.GetValue(json)) throw new ArgumentException("--per-problem goes with --json (it adds each problem's pass@1 to the JSON object)");
            string path = r.GetValue(model) ?? DefaultModel.Resolve(Console.Error);
            var sp = new SamplingParams { Temperature = r.GetValue(temperature), TopP = r.GetValue(topP), Seed = r.GetValue(seed) };
            sp.Validate();
            EvalResult Evaluate(string p, IReasoningTask t)
            {
                using var lm = LoadedModel.Load(p, r.GetValue(threads), r.GetValue(mmap));
                return Evaluator.Run(lm, t, r.GetValue(n), r.GetValue(k), sp, r.GetValue(seed), r.GetValue(maxTokens));
            }
            var res = Evaluate(path, t);
            string? basePath = r.GetValue(baseline);
            var baseRes = basePath != null ? Evaluate(basePath, bt) : null;
            var gain = baseRes != null ? PairedGain.Of(res.PerProblem, baseRes.PerProblem) : null;
            foreach (var (prompt, completion, error) in res.Failures.Take(r.GetValue(show)))
            {
                Console.Error.WriteLine($"--- {prompt}\n{completion}");
                if (error != null) Console.Error.WriteLine($"--- first error, line {error.Line + 1} ({error.Kind}: {error.Field}): expected '{error.Expected}', got '{error.Got}'");
            }
            if (r.GetValue(json))
            {
                Dictionary<string, object> Summary(string p, EvalResult e)
                {
                    var o = new Dictionary<string, object>
                    {
                        ["model"] = p, ["pass@1"] = Math.Round(e.PassAt1, 4), [$"cons@{e.K}"] = Math.Round(e.ConsAtK, 4),
                        ["format_rate"] = Math.Round(e.FormatRate, 4), ["mean_tokens"] = Math.Round(e.MeanLength, 1),
                        ["pass@1_by_kind"] = e.PassAt1ByKind.ToDictionary(x => x.Key, x => Math.Round(x.Value, 4)),
                        ["first_errors"] = e.FirstErrors,
                    };
                    if (r.GetValue(perProblem)) o["per_problem"] = e.PerProblem.Select(x => Math.Round(x, 4)).ToArray();
                    return o;
                }
                var obj = Summary(path, res);
                obj["task"] = res.Task; obj["n"] = res.Problems; obj["k"] = res.K; obj["seed"] = r.GetValue(seed); obj["temperature"] = sp.Temperature;
                if (baseRes != null && gain != null)
                {
                    obj["baseline"] = Summary(basePath!, baseRes);
                    obj["gain"] = Math.Round(gain.Mean, 4);
                    obj["gain_ci95"] = new[] { Math.Round(gain.Low, 4), Math.Round(gain.High, 4) };
                    obj["gain_sd"] = Math.Round(gain.Sd, 4);
                }
                Console.WriteLine(JsonSerializer.Serialize(obj));
            }
            else
            {
                Console.WriteLine($"{res.Task}: {res.Problems} held-out problems x {res.K} samples (temperature {sp.Temperature})");
                void Print(string name, EvalResult e)
                {
                    Console.WriteLine($"{name}pass@1 {e.PassAt1:F4}  cons@{e.K} {e.ConsAtK:F4}  format {e.FormatRate:F4}  mean tokens {e.MeanLength:F1}");
                    foreach (var (kind, v) in e.PassAt1ByKind) Console.WriteLine($"  pass@1 {kind}: {v:F4}");
                    if (e.FirstErrors.Count > 0) Console.WriteLine("  first departures from the worked solution (line: field):");
                    foreach (var (kind, count) in e.FirstErrors) Console.WriteLine($"    {count,5}  {kind}");
                }
                Print("", res);
                if (baseRes != null && gain != null)
                {
                    Print("baseline ", baseRes);
                    Console.WriteLine($"gain {gain.Mean:+0.0000;-0.0000} (95% CI {gain.Low:+0.0000;-0.0000} to {gain.High:+0.0000;-0.0000}, paired over {gain.N} problems)");
                }
            }
            return 0;
        }));
        return cmd;
    }
}
