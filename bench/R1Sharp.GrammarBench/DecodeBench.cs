// Decode throughput with and without a grammar, in one run: requests on one scheduler slot alternate between a free
// decode and one held to a JSON Schema (the mask computed whenever the sampled token is refused), each timed from
// its first generated token to its last, so the prefill is left out. A random-weight model is the worst case: its
// picks are refused far more often than a trained model's, so the mask is computed at most steps.
//   dotnet run --project bench/R1Sharp.GrammarBench -c Release -- decode --model FILE [-n 128] [-r 5] [-t THREADS] [--temp 0.6] [--top-p 0.95] [--warmup 1]
// --warmup N runs N constrained requests before the timed ones (seeds other than theirs), so that more of the
// grammar's token sets are computed before timing: the steady state of a server whose grammars are warm.
// The defaults are the server's (the R1 model card's); --temp 0 (greedy, an argmax) leaves the grammar's own cost.
using System.Diagnostics;
using R1Sharp.Chat;
using R1Sharp.Engine;
using R1Sharp.Grammar;
using R1Sharp.Sampling;

internal static class DecodeBench
{
    // long enough that every constrained request runs to the token limit: at least 64 short strings
    private const string Schema = """{"type":"array","items":{"type":"string","maxLength":16},"minItems":64}""";

    public static int Run(string[] args)
    {
        string? model = null;
        int n = 128, reps = 5, threads = 0, warmup = 1;
        float temperature = 0.6f, topP = 0.95f;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "-n": n = int.Parse(args[++i]); break;
                case "-r": reps = int.Parse(args[++i]); break;
                case "-t": threads = int.Parse(args[++i]); break;
                case "--temp": temperature = float.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = int.Parse(args[++i]); break;
                case "--top-p": topP = float.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        if (model is null)
        {
            Console.Error.WriteLine("usage: R1Sharp.GrammarBench decode --model FILE [-n 128] [-r 5] [-t THREADS]");
            return 2;
        }
        using var loaded = LoadedModel.Load(model, threads);
        var tok = loaded.Tokenizer;
        using var scheduler = new Scheduler(loaded.Model, tok, loaded.IsEndOfGeneration, new SchedulerOptions { Slots = 1, ContextSize = 512 });
        var sw = Stopwatch.StartNew();
        var grammar = GrammarCache.For(tok).GetOrCompile("bench:" + Schema, () => JsonSchemaCompiler.Compile(Schema));
        Console.WriteLine($"{model}: vocabulary {tok.VocabSize}, schema compiled in {sw.Elapsed.TotalMilliseconds:F1} ms; {n} tokens per request, {reps} repetitions, temperature {temperature}, top-p {topP}");
        int[] prompt = tok.Encode("Write a JSON array of words:", addBos: tok.AddBos);
        var sampling = new SamplingParams { Temperature = temperature, TopP = topP };

        (double Wall, double Cpu) Decode(bool constrained, int rep)
        {
            var request = new EngineRequest
            {
                Prompt = prompt, MaxTokens = n, IgnoreEos = !constrained, Sampling = sampling with { Seed = (ulong)rep },
                Constraint = constrained ? GrammarConstraint.ForAnswer(grammar, startsInReasoning: false) : null,
            };
            long first = 0, last = 0;
            double firstCpu = 0, lastCpu = 0;
            int tokens = 0, firstTokens = 0;
            var text = new System.Text.StringBuilder();
            foreach (var chunk in scheduler.Submit(request).ToBlockingEnumerable())
            {
                text.Append(chunk.Text);
                if (chunk.Tokens == 0) continue;
                if (first == 0) { first = Stopwatch.GetTimestamp(); firstCpu = ThreadCpu.ProcessMicroseconds(); firstTokens = chunk.Tokens; }
                last = Stopwatch.GetTimestamp();
                lastCpu = ThreadCpu.ProcessMicroseconds();
                tokens += chunk.Tokens;
            }
            if (tokens < n) throw new InvalidOperationException($"the {(constrained ? "constrained" : "free")} request ended after {tokens} of {n} tokens: {text}");
            // tokens per wall second, and per CPU second of the whole process (steadier on a shared machine)
            return ((tokens - firstTokens) / Stopwatch.GetElapsedTime(first, last).TotalSeconds, (tokens - firstTokens) / ((lastCpu - firstCpu) / 1e6));
        }

        Decode(false, 0); // warm-up
        for (int w = 0; w < warmup; w++) Decode(true, 1000 + w);
        var free = new List<(double Wall, double Cpu)>();
        var held = new List<(double Wall, double Cpu)>();
        for (int r = 0; r < reps; r++)
        {
            // alternate which goes first, so both see the same machine state on average
            if (r % 2 == 0) { free.Add(Decode(false, r)); held.Add(Decode(true, r)); }
            else { held.Add(Decode(true, r)); free.Add(Decode(false, r)); }
            Console.WriteLine($"  rep {r}: free {free[^1].Wall:F1} tok/s ({free[^1].Cpu:F1} per CPU s), constrained {held[^1].Wall:F1} tok/s ({held[^1].Cpu:F1} per CPU s), ratio {held[^1].Wall / free[^1].Wall:F3} (CPU {held[^1].Cpu / free[^1].Cpu:F3})");
        }
        double Median(IEnumerable<double> values) { var s = values.Order().ToList(); return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2; }
        var ratios = free.Zip(held, (f, h) => h.Wall / f.Wall).ToList();
        var cpuRatios = free.Zip(held, (f, h) => h.Cpu / f.Cpu).ToList();
        Console.WriteLine($"decode tokens/s, median of {reps}: free {Median(free.Select(x => x.Wall)):F1}, constrained {Median(held.Select(x => x.Wall)):F1}; constrained/free per repetition: median {Median(ratios):F3}, min {ratios.Min():F3}");
        Console.WriteLine($"decode tokens per CPU second, median of {reps}: free {Median(free.Select(x => x.Cpu)):F1}, constrained {Median(held.Select(x => x.Cpu)):F1}; constrained/free per repetition: median {Median(cpuRatios):F3}, min {cpuRatios.Min():F3}");
        return 0;
    }
}
