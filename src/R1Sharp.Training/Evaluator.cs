// Accuracy on held-out problems (seeds disjoint from every training seed): pass@1 is the mean correctness over all k
// samples of every problem (the R1 paper's estimator), cons@k the correctness of the majority answer of the k samples.
// Two models on the same problems compare per problem: the mean of the paired differences with its 95% interval.
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Training.Tasks;

namespace R1Sharp.Training;

/// <param name="PerProblem">Each problem's share of correct samples, in problem order.</param>
/// <param name="FirstErrors">
/// For tasks whose worked solution is the only right one (arithmetic): how many wrong completions first depart from it
/// at each kind of line and field ("mul column: carry"); empty for other tasks.
/// </param>
public sealed record EvalResult(string Task, int Problems, int K, double PassAt1, double ConsAtK, double FormatRate, double MeanLength,
    IReadOnlyDictionary<string, double> PassAt1ByKind, IReadOnlyList<(string Prompt, string Completion, FirstError? Error)> Failures, double[] PerProblem,
    IReadOnlyDictionary<string, int> FirstErrors);

/// <summary>The paired difference of two evaluations of the same problems: mean ± 1.96·sd/√n.</summary>
public sealed record PairedGain(double Mean, double Low, double High, double Sd, int N)
{
    public static PairedGain Of(IReadOnlyList<double> model, IReadOnlyList<double> baseline)
    {
        if (model.Count != baseline.Count || model.Count < 2) throw new ArgumentException("paired evaluations need the same problems, at least two");
        int n = model.Count;
        var d = new double[n];
        for (int i = 0; i < n; i++) d[i] = model[i] - baseline[i];
        double mean = d.Average();
        double var = d.Sum(x => (x - mean) * (x - mean)) / (n - 1);
        double half = 1.96 * Math.Sqrt(var / n);
        return new PairedGain(mean, mean - half, mean + half, Math.Sqrt(var), n);
    }
}

public static class Evaluator
{
    /// <param name="chunk">Sequences decoded in one batch (each gets a KV-cache slot of prompt + <paramref name="maxNew"/> tokens).</param>
    public static EvalResult Run(LoadedModel lm, IReasoningTask task, int n, int k, SamplingParams sp, ulong seed, int maxNew = 1024, int chunk = 256)
    {
        var problems = Enumerable.Range(0, n).Select(i => task.Generate(TaskRegistry.HeldOutSeed(seed, i))).ToList();
        double correct = 0, formatted = 0, length = 0, cons = 0;
        var perProblem = new double[n];
        var byKind = new Dictionary<string, (double Correct, int Count)>();
        var failures = new List<(string, string, FirstError?)>();
        var firstErrors = new Dictionary<string, int>();
        bool oneSolution = task is ArithmeticTask; // countdown has other right solutions than the worked one
        int perChunk = Math.Max(1, chunk / k); // problems decoded together: about `chunk` sequences
        for (int c0 = 0; c0 < n; c0 += perChunk)
        {
            var part = problems.Skip(c0).Take(perChunk).ToList();
            var prompts = part.Select(p => TaskVocab.EncodePrompt(lm.Tokenizer, p)).ToList();
            var completions = Rollout.Generate(lm, prompts, k, sp, maxNew, seed + (ulong)c0);
            for (int i = 0; i < part.Count; i++)
            {
                var votes = new Dictionary<string, (int Count, bool Correct)>();
                string kind = part[i].Kind;
                for (int j = 0; j < k; j++)
                {
                    var comp = completions[i * k + j];
                    var r = task.Score(part[i], comp.Text);
                    correct += r.Correct ? 1 : 0;
                    perProblem[c0 + i] += r.Correct ? 1.0 / k : 0;
                    if (!r.Correct)
                    {
                        var error = oneSolution ? FirstError.Find(task.Solution(part[i]), comp.Text) : null;
                        if (error != null)
                        {
                            string key = $"{error.Kind}: {error.Field}";
                            firstErrors[key] = firstErrors.GetValueOrDefault(key) + 1;
                        }
                        if (failures.Count < 50) failures.Add((part[i].Prompt, comp.Text, error));
                    }
                    formatted += r.WellFormed ? 1 : 0;
                    length += comp.Tokens.Length;
                    var e = byKind.GetValueOrDefault(kind);
                    byKind[kind] = (e.Correct + (r.Correct ? 1 : 0), e.Count + 1);
                    if (r.Answer is { } a && r.WellFormed)
                    {
                        string key = Answers.Integer(a)?.ToString() ?? a;
                        var v = votes.GetValueOrDefault(key);
                        votes[key] = (v.Count + 1, r.Correct);
                    }
                }
                if (votes.Count > 0 && votes.MaxBy(v => v.Value.Count).Value.Correct) cons++;
            }
        }
        int total = n * k;
        return new EvalResult(task.Name, n, k, correct / total, cons / n, formatted / total, length / total,
            byKind.OrderBy(e => e.Key).ToDictionary(e => e.Key, e => e.Value.Correct / e.Value.Count), failures, perProblem,
            firstErrors.OrderByDescending(e => e.Value).ThenBy(e => e.Key, StringComparer.Ordinal).ToDictionary(e => e.Key, e => e.Value));
    }
}
