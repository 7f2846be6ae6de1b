// bench: llama-bench-style throughput: prefill of -p tokens in one batch, then decode of -n tokens one by one,
// both from an empty cache with random token ids. With a speculation flag (--draft-model, --spec) it also generates
// up to -n tokens greedily from --prompt (in the chat template) with and without speculation, the two alternating in
// each repetition, and reports both speeds, their ratio, the acceptance rate and the tokens per forward pass (the
// same tokens come out of both: the ratio is that of the time per token).
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
        var noRepack = new Option<bool>("--no-repack") { Description = "keep the file's weight layouts (no interleaved Q8_0, Q4_K, Q6_K, Q5_0), as llama-bench's --no-repack" };
        var prompt = new Option<string>("--prompt")
        {
            Description = "with --draft-model or --spec: the prompt (chat template applied) of the generation with and without speculation",
            DefaultValueFactory = _ => "What is 17+25?",
        };
        var ignoreEos = new Option<bool>("--ignore-eos")
        {
            Description = "with --draft-model or --spec: generate all -n tokens, past end-of-generation tokens (random-weight files end early)",
        };
        var parallel = new Option<int?>("--parallel", "-np")
        {
            Description = "with --draft-model or --spec: N streams of the prompt at once through the server's scheduler (continuous batching) instead of one session",
        };
        var speculation = new SpeculationFlags();
        var cmd = new Command("bench", "measure prefill and decode tokens per second") { model, prefill, decode, reps, threads, mmap, json, noRepack, prompt, ignoreEos, parallel };
        speculation.AddTo(cmd);
        cacheType.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var specChoice = speculation.Read(r);
            var kvType = cacheType.Parse(r);
            int p = r.GetValue(prefill), n = r.GetValue(decode), runs = r.GetValue(reps);
            if (p < 0 || n < 0 || p + n == 0 || runs < 1) throw new ArgumentException("-p and -n must be >= 0 (not both 0) and -r >= 1");
            string path = r.GetValue(model)!;
            var load = Stopwatch.StartNew();
            using var lm = LoadedModel.Load(path, r.GetValue(threads), r.GetValue(mmap), repack: !r.GetValue(noRepack));
            double loadSeconds = load.Elapsed.TotalSeconds;
            using var session = new InferenceSession(lm.Model, Math.Max(p, n) + 1, kvType.K, kvType.V);
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

            SpecResult? specResult = null;
            if (specChoice.Speculates && n > 0)
            {
                using var source = SpeculationFlags.Create(specChoice, lm)!.Source;
                var options = SpeculationFlags.Options(specChoice, source);
                specResult = r.GetValue(parallel) is int streams
                    ? BenchScheduler(lm, options, r.GetValue(prompt)!, n, runs, kvType, r.GetValue(ignoreEos), streams)
                    : BenchSpeculation(lm, options, r.GetValue(prompt)!, n, runs, kvType, r.GetValue(ignoreEos));
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
                if (specResult is { } sr)
                {
                    result["spec"] = sr.Source;
                    result["streams"] = sr.Streams;
                    result["spec_generated_tokens"] = sr.Tokens;
                    result["plain_decode_tok_s"] = Math.Round(sr.Plain, 3);
                    result["spec_decode_tok_s"] = Math.Round(sr.Spec, 3);
                    result["speedup"] = Math.Round(sr.Spec / sr.Plain, 3);
                    result["accept_rate"] = Math.Round(sr.AcceptRate, 4);
                    result["tokens_per_pass"] = Math.Round(sr.TokensPerPass, 3);
                    if (sr.MtpHeadShare is double share) result["mtp_head_vs_pass"] = Math.Round(share, 3);
                }
                Console.WriteLine(JsonSerializer.Serialize(result));
                return 0;
            }
            Console.WriteLine("| model | size | params | threads | test | t/s |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: |");
            string size = $"{modelBytes / (double)(1L << 30):F2} GiB";
            if (p > 0) Console.WriteLine($"| {name} | {size} | {parameters / 1e9:F2} B | {threadCount} | pp{p} | {Mean(pp):F2} ± {Std(pp):F2} |");
            if (n > 0) Console.WriteLine($"| {name} | {size} | {parameters / 1e9:F2} B | {threadCount} | tg{n} | {Mean(tg):F2} ± {Std(tg):F2} |");
            if (specResult is { } s)
            {
                Console.WriteLine($"| {name} | {size} | {parameters / 1e9:F2} B | {threadCount} | gen{s.Tokens} | {s.Plain:F2} |");
                Console.WriteLine($"| {name} | {size} | {parameters / 1e9:F2} B | {threadCount} | gen{s.Tokens} {s.Source} | {s.Spec:F2} |");
                Console.WriteLine();
                Console.WriteLine($"speculation ({s.Source}): {s.Spec / s.Plain:F2}x, acceptance {s.AcceptRate:P1}, {s.TokensPerPass:F2} tokens per pass");
                if (s.MtpHeadShare is double share) Console.WriteLine($"the MTP head's step costs {share:P1} of a one-token pass of the model");
            }
            return 0;
        }));
        return cmd;
    }

    private sealed record SpecResult(string Source, int Tokens, double Plain, double Spec, double AcceptRate, double TokensPerPass)
    {
        /// <summary>Streams generated at once (1: one session; more: through the scheduler).</summary>
        public int Streams { get; init; } = 1;
        /// <summary>An MTP head's one-position step over the model's one-token pass (medians), where the source is one.</summary>
        public double? MtpHeadShare { get; init; }
    }

    /// <summary>
    /// Greedy generation of up to <paramref name="n"/> tokens from <paramref name="text"/>, without and with speculation
    /// in turn, <paramref name="runs"/> times each (after one warm-up of each); tokens per second of decode.
    /// </summary>
    private static SpecResult BenchSpeculation(LoadedModel lm, SpeculationOptions options, string text, int n, int runs, (GgmlType K, GgmlType V) kvType, bool ignoreEos)
    {
        var setup = ChatFormatOptions.Resolve((null, true, null), lm);
        int[] ids = lm.Tokenizer.Encode(setup.Render([Chat.ChatMessage.User(text)], lm));
        int contextSize = Math.Min(lm.Config.ContextLength, ids.Length + n);
        if (ids.Length >= contextSize) throw new ArgumentException($"the --prompt has {ids.Length} tokens, which leaves no room to generate in a context of {lm.Config.ContextLength}");
        using var session = new InferenceSession(lm.Model, contextSize, kvType.K, kvType.V);
        using var spec = new Speculator(options, contextSize);
        CompletionStats Generate(Speculator? s)
        {
            session.Reset();
            return Completion.Run(session, lm, ids, new Sampler(SamplingParams.Greedy), contextSize - ids.Length,
                new Chat.ReasoningParser(false), null, (_, _) => { }, default, s, ignoreEos);
        }
        Generate(null);
        Generate(spec);
        var plain = new List<double>();
        var fast = new List<double>();
        long drafted = 0, accepted = 0, passes = 0, tokens = 0;
        int generated = 0;
        for (int rep = 0; rep < runs; rep++)
        {
            var a = Generate(null);
            var b = Generate(spec);
            if (a.GeneratedTokens != b.GeneratedTokens)
                throw new InvalidOperationException($"greedy generation gave {a.GeneratedTokens} tokens without speculation and {b.GeneratedTokens} with it");
            plain.Add(a.TokensPerSecond);
            fast.Add(b.TokensPerSecond);
            drafted += b.Drafted;
            accepted += b.Accepted;
            passes += b.Passes;
            // the first token comes from the prompt's pass: the decode passes made the others
            tokens += Math.Max(0, b.GeneratedTokens - 1);
            generated = b.GeneratedTokens;
        }
        return new SpecResult(options.Source.Name, generated, Mean(plain), Mean(fast), drafted > 0 ? (double)accepted / drafted : 0,
            passes > 0 ? (double)tokens / passes : 0)
        {
            MtpHeadShare = options.Source is MtpSource mtp ? MtpHeadShare(lm, mtp.Head, session, ids) : null,
        };
    }

    /// <summary>
    /// As <see cref="BenchSpeculation"/>, with <paramref name="streams"/> copies of the prompt generated at once through
    /// the scheduler (the server's continuous batching), without and with speculation in turn; aggregate decode tokens
    /// per second (the first token of each stream excluded, timed from the first stream's first token).
    /// </summary>
    private static SpecResult BenchScheduler(LoadedModel lm, SpeculationOptions options, string text, int n, int runs, (GgmlType K, GgmlType V) kvType,
        bool ignoreEos, int streams)
    {
        if (streams < 1) throw new ArgumentException($"--parallel must be at least 1 (got {streams})");
        var setup = ChatFormatOptions.Resolve((null, true, null), lm);
        int[] ids = lm.Tokenizer.Encode(setup.Render([Chat.ChatMessage.User(text)], lm));
        int contextSize = Math.Min(lm.Config.ContextLength, ids.Length + n);
        if (ids.Length >= contextSize) throw new ArgumentException($"the --prompt has {ids.Length} tokens, which leaves no room to generate in a context of {lm.Config.ContextLength}");
        var request = new EngineRequest { Prompt = ids, MaxTokens = contextSize - ids.Length, IgnoreEos = ignoreEos, Sampling = SamplingParams.Greedy };
        long drafted = 0, accepted = 0, steps = 0;
        (double TokS, int Tokens) Run(bool speculate)
        {
            var o = new SchedulerOptions
            {
                Slots = streams, ContextSize = contextSize, CacheType = kvType.K, CacheTypeV = kvType.V, Speculation = speculate ? options : null,
                OnStep = st => { if (speculate && st.DecodeTokens > 0) steps++; },
            };
            using var s = new Scheduler(lm.Model, lm.Tokenizer, lm.IsEndOfGeneration, o);
            long first = 0;
            int tokens = 0;
            s.Pause();
            var all = Enumerable.Range(0, streams).Select(_ => Task.Run(async () =>
            {
                int mine = 0;
                await foreach (var c in s.Submit(request))
                {
                    if (mine == 0 && c.Tokens > 0) Interlocked.CompareExchange(ref first, Stopwatch.GetTimestamp(), 0);
                    mine += c.Tokens;
                }
                return mine;
            })).ToArray();
            s.Resume();
            Task.WaitAll(all);
            var elapsed = Stopwatch.GetElapsedTime(first);
            tokens = all.Sum(t => t.Result);
            if (speculate)
            {
                drafted += s.DraftTokens;
                accepted += s.AcceptedDraftTokens;
            }
            return ((tokens - streams) / elapsed.TotalSeconds, tokens);
        }
        Run(false);
        Run(true);
        drafted = accepted = steps = 0;
        var plain = new List<double>();
        var fast = new List<double>();
        int generated = 0;
        for (int rep = 0; rep < runs; rep++)
        {
            var a = Run(false);
            var b = Run(true);
            if (a.Tokens != b.Tokens)
                throw new InvalidOperationException($"greedy generation gave {a.Tokens} tokens without speculation and {b.Tokens} with it");
            plain.Add(a.TokS);
            fast.Add(b.TokS);
            generated = b.Tokens / streams;
        }
        // tokens per decode step of one stream: all streams' tokens after their first, over the steps that decoded
        double perPass = steps > 0 ? (double)(generated - 1) * runs / steps : 0;
        return new SpecResult(options.Source.Name, generated, Mean(plain), Mean(fast), drafted > 0 ? (double)accepted / drafted : 0, perPass)
        {
            Streams = streams,
        };
    }

    /// <summary>
    /// The median time of the MTP head's step at one position over that of the model's one-token pass, the two
    /// alternating 200 times after the prompt: what drafting with it adds per token, whatever its acceptance.
    /// </summary>
    private static double MtpHeadShare(LoadedModel lm, Models.IMtpHead head, InferenceSession session, int[] prompt)
    {
        const int Runs = 200;
        int dim = head.Dim, at = prompt.Length - 1;
        session.Reset();
        var hidden = new float[prompt.Length * dim];
        session.Evaluate(prompt, 1, hidden);
        using var cache = head.CreateCache(1, session.ContextSize);
        var batch = new Batch();
        for (int i = 0; i < at; i++) batch.Add(prompt[i + 1], i, 0, i == at - 1);
        var logits = new float[lm.Config.VocabSize];
        var output = new float[prompt.Length * dim];
        if (at > 0) head.Forward(batch, hidden, cache, logits, output);
        var main = new List<double>();
        var step = new List<double>();
        for (int r = 0; r < Runs; r++)
        {
            session.Truncate(prompt.Length);
            long t0 = Stopwatch.GetTimestamp();
            session.Evaluate([prompt[^1]]);
            main.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            cache.Truncate(0, at);
            batch.Clear();
            batch.Add(prompt[^1], at, 0, true);
            t0 = Stopwatch.GetTimestamp();
            head.Forward(batch, hidden.AsSpan(at * dim, dim), cache, logits, output);
            step.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        return Median(step) / Median(main);
    }

    private static double Median(List<double> xs)
    {
        var sorted = xs.Order().ToList();
        return sorted[sorted.Count / 2];
    }

    private static double Mean(List<double> xs) => xs.Count == 0 ? 0 : xs.Average();

    private static double Std(List<double> xs)
    {
        if (xs.Count < 2) return 0;
        double m = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - m) * (x - m)) / (xs.Count - 1));
    }
}
