// bench: llama-bench-style throughput: prefill of -p tokens in one batch, then decode of -n tokens one by one,
// both from an empty cache with random token ids.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

namespace R1Sharp.Cli;

internal static class BenchCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var prefill = new Option<int>("--prompt-tokens", "-p") { Description = "prompt tokens to prefill", DefaultValueFactory = _ => 512 };
        var decode = new Option<int>("--gen-tokens", "-n") { Description = "tokens to decode", DefaultValueFactory = _ => 128 };
        var reps = new Option<int>("--repetitions", "-r") { Description = "runs of each test", DefaultValueFactory = _ => 1 };
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cacheType = CliCommon.CacheTypeOption();
        var json = new Option<bool>("--json") { Description = "print one JSON object instead of the table" };
        var noRepack = new Option<bool>("--no-repack") { Description = "keep the file's weight layouts (no interleaved Q8_0, Q4_K, Q6_K), as llama-bench's --no-repack" };
        var cmd = new Command("bench", "measure prefill and decode tokens per second") { model, prefill, decode, reps, threads, mmap, json, noRepack, cacheType };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var kvType = CliCommon.CacheType(r.GetValue(cacheType));
            int p = r.GetValue(prefill), n = r.GetValue(decode), runs = r.GetValue(reps);
            if (p < 0 || n < 0 || p + n == 0 || runs < 1) throw new ArgumentException("-p and -n must be >= 0 (not both 0) and -r >= 1");
            string path = r.GetValue(model)!;
            var load = Stopwatch.StartNew();
            using var lm = LoadedModel.Load(path, r.GetValue(threads), r.GetValue(mmap), repack: !r.GetValue(noRepack));
            double loadSeconds = load.Elapsed.TotalSeconds;
            using var session = new InferenceSession(lm.Model, Math.Max(p, n) + 1, kvType);
            var rng = new Xoshiro256(1234);
            int RandomToken() => (int)(rng.Next() % (ulong)lm.Tokenizer.VocabSize);

            // the first logits come from the mapping while the weights are copied; the figures below, from memory
            session.Evaluate([RandomToken(), RandomToken()]);
            double firstLogitsSeconds = load.Elapsed.TotalSeconds;
            lm.InMemory.GetAwaiter().GetResult();
            double inMemorySeconds = load.Elapsed.TotalSeconds;

            // warm-up: touch every weight once so page-cache and JIT effects stay out of the figures
            session.Reset();
            session.Evaluate([RandomToken(), RandomToken()]);

            var pp = new List<double>();
            var tg = new List<double>();
            for (int rep = 0; rep < runs; rep++)
            {
                if (p > 0)
                {
                    session.Reset();
                    var ids = Enumerable.Range(0, p).Select(_ => RandomToken()).ToArray();
                    var sw = Stopwatch.StartNew();
                    session.Evaluate(ids);
                    pp.Add(p / sw.Elapsed.TotalSeconds);
                }
                if (n > 0)
                {
                    session.Reset();
                    var sw = Stopwatch.StartNew();
                    for (int i = 0; i < n; i++) session.Evaluate([RandomToken()]);
                    tg.Add(n / sw.Elapsed.TotalSeconds);
                }
            }

            long modelBytes = new FileInfo(path).Length;
            long parameters = lm.File.Tensors.Sum(t => t.ElementCount);
            var types = lm.File.Tensors.GroupBy(t => t.Type).OrderByDescending(g => g.Sum(t => t.ByteSize)).First().Key;
            string name = $"{lm.Config.Architecture} {parameters / 1e9:F2}B {GgmlTypeInfo.Name(types).ToUpperInvariant()}";
            int threadCount = lm.Pool.Threads;
            if (r.GetValue(json))
            {
                var result = new Dictionary<string, object>
                {
                    ["model"] = name,
                    ["model_path"] = path,
                    ["model_bytes"] = modelBytes,
                    ["params"] = parameters,
                    ["threads"] = threadCount,
                    ["load_s"] = Math.Round(loadSeconds, 3),
                    ["first_logits_s"] = Math.Round(firstLogitsSeconds, 3),
                    ["in_memory_s"] = Math.Round(inMemorySeconds, 3),
                    ["weights"] = lm.File.InMemory ? "memory" : "mapping",
                    ["prefill_tokens"] = p,
                    ["decode_tokens"] = n,
                    ["prefill_tok_s"] = Math.Round(Mean(pp), 3),
                    ["decode_tok_s"] = Math.Round(Mean(tg), 3),
                };
                Console.WriteLine(JsonSerializer.Serialize(result));
                return 0;
            }
            Console.WriteLine("| model | size | params | threads | test | t/s |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
            string size = $"{modelBytes / (double)(1L << 30):F2} GiB";
            if (p > 0) Console.WriteLine($"| {name} | {size} | {parameters / 1e9:F2} B | {threadCount} | pp{p} | {Mean(pp):F2} ± {Std(pp):F2} |");
            if (n > 0) Console.WriteLine($"| {name} | {size} | {parameters / 1e9:F2} B | {threadCount} | tg{n} | {Mean(tg):F2} ± {Std(tg):F2} |");
            return 0;
        }));
        return cmd;
    }

    private static double Mean(List<double> xs) => xs.Count == 0 ? 0 : xs.Average();

    private static double Std(List<double> xs)
    {
        if (xs.Count < 2) return 0;
        double m = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - m) * (x - m)) / (xs.Count - 1));
    }
}
