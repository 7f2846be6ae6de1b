// Side-by-side benchmark: R1Sharp and llama.cpp (LLamaSharp) on the same GGUF, same thread count, in one run,
// alternating engine by engine so both see the same machine state: each repetition prefills with one engine then the
// other, and decodes in slices of --slice tokens taken in turn (a decode is bound by memory bandwidth, which on a
// shared machine moves within seconds). Prints both and the ratio, and decode as a fraction of the read bandwidth
// measured between the repetitions.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- --model FILE [-p 512] [-n 128] [-d 0] [-t 2] [-r 2] [--slice 16]
// -d DEPTH times decode after DEPTH tokens of context (llama-bench's -d): attention then reads the KV cache too.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- tokenize --tokenizer-json PATH [--text FILE] [-r 3]
//   dotnet run --project bench/R1Sharp.Bench -c Release -- mapped --engine ours|llama --model FILE (MappedDecode.cs)
//   dotnet run --project bench/R1Sharp.Bench -c Release -- kernels --types iq4_xs,iq3_s [--tokens 1] (KernelVsGgml.cs)
using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;
using R1Sharp.Engine;
using R1Sharp.Sampling;

if (args.Length > 0 && args[0] == "tokenize") return TokenizerBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "mapped") return MappedDecode.Run(args[1..]);
if (args.Length > 0 && args[0] == "kernels") return KernelVsGgml.Run(args[1..]);

var opts = BenchOptions.Parse(args);
if (opts is null)
{
    Console.Error.WriteLine("usage: R1Sharp.Bench --model FILE [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS] [--slice TOKENS]");
    return 2;
}
NativeLibraryConfig.All.WithLogCallback((level, message) => { if (level == LLamaLogLevel.Error) Console.Error.Write(message); });

var ours = new List<(double Pp, double Tg)>();
var bandwidth = new List<double>();
double bytesPerToken = 0;
int threads = 0;
var theirs = new List<(double Pp, double Tg)>();
long fileBytes = new FileInfo(opts.Model).Length;

using (var lm = LoadedModel.Load(opts.Model, opts.Threads))
// the warm-up below prefills 64 tokens and decodes 48, whatever -p and -n ask
using (var session = new InferenceSession(lm.Model, Math.Max(Math.Max(opts.Prompt, opts.Depth + opts.Gen), 64) + 2))
{
    var p = new ModelParams(opts.Model)
    {
        ContextSize = (uint)(Math.Max(Math.Max(opts.Prompt, opts.Depth + opts.Gen), 64) + 16),
        BatchSize = 512,
        UBatchSize = 512,
        Threads = opts.Threads,
        BatchThreads = opts.Threads,
        GpuLayerCount = 0,
    };
    using var weights = LLamaWeights.LoadFromFile(p);
    using var ctx = weights.CreateContext(p);
    int vocab = lm.Config.VocabSize;
    var rng = new Xoshiro256(99);
    int[] Random(int n) => Enumerable.Range(0, n).Select(_ => (int)(rng.Next() % (ulong)Math.Min(vocab, lm.Tokenizer.VocabSize))).ToArray();

    // warm both, ours once the weights are in memory: page in the weights, and run a short prefill and decode of each
    // (past .NET's tiered compilation, which optimizes a method again after about 30 calls)
    lm.InMemory.GetAwaiter().GetResult();
    OurPrefill(session, Random(64));
    LlamaPrefill(ctx, Random(64));
    Decode(session, ctx, [], Random(48), opts.Slice);
    bytesPerToken = ReadBandwidth.BytesPerToken(lm.File);
    threads = lm.Pool.Threads;

    for (int rep = 0; rep < opts.Reps; rep++)
    {
        var prompt = Random(opts.Prompt);
        var gen = Random(opts.Gen);
        var depth = Random(opts.Depth);
        double ourPp = OurPrefill(session, prompt), theirPp = LlamaPrefill(ctx, prompt);
        var (ourTg, theirTg) = Decode(session, ctx, depth, gen, opts.Slice);
        ours.Add((ourPp, ourTg));
        theirs.Add((theirPp, theirTg));
        bandwidth.Add(Enumerable.Range(0, 3).Max(_ => ReadBandwidth.Measure(lm.File, threads)));
        Console.Error.WriteLine($"rep {rep + 1}: r1sharp pp {ours[^1].Pp:F2} tg {ours[^1].Tg:F2} | llama.cpp pp {theirs[^1].Pp:F2} tg {theirs[^1].Tg:F2} | read {bandwidth[^1] / 1e9:F1} GB/s");
    }
}

double oPp = ours.Average(r => r.Pp), oTg = ours.Average(r => r.Tg);
double lPp = theirs.Average(r => r.Pp), lTg = theirs.Average(r => r.Tg);
Console.WriteLine($"model: {opts.Model} ({fileBytes / 1e9:F2} GB), threads {opts.Threads}, {opts.Reps} reps");
Console.WriteLine("| engine | pp{0} tok/s | tg{1}{2} tok/s |", opts.Prompt, opts.Gen, opts.Depth > 0 ? $" @ d{opts.Depth}" : "");
Console.WriteLine("| --- | ---: | ---: |");
Console.WriteLine($"| r1sharp | {oPp:F2} | {oTg:F2} |");
Console.WriteLine($"| llama.cpp | {lPp:F2} | {lTg:F2} |");
Console.WriteLine($"| ratio | {oPp / lPp:F2}x | {oTg / lTg:F2}x |");
// each repetition runs both engines back to back: the median of the per-repetition ratios is the figure least moved
// by a burst of load that falls on one engine's run
double MedianRatio(Func<(double Pp, double Tg), double> f) => Median(ours.Zip(theirs, (o, l) => f(o) / f(l)).ToList());
Console.WriteLine($"| median of per-rep ratios | {MedianRatio(r => r.Pp):F2}x | {MedianRatio(r => r.Tg):F2}x |");
double bw = bandwidth.Average();
Console.WriteLine($"read bandwidth {bw / 1e9:F1} GB/s ({threads} threads, the weights summed between runs); decode reads about " +
                  $"{bytesPerToken / 1e9:F3} GB per token: r1sharp {oTg * bytesPerToken / 1e9:F1} GB/s = {oTg * bytesPerToken / bw:P0} of it, " +
                  $"llama.cpp {lTg * bytesPerToken / 1e9:F1} GB/s = {lTg * bytesPerToken / bw:P0}");
return 0;

static double Median(List<double> xs)
{
    xs.Sort();
    return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2;
}

static double OurPrefill(InferenceSession s, int[] prompt)
{
    s.Reset();
    var sw = Stopwatch.StartNew();
    if (prompt.Length > 0) s.Evaluate(prompt);
    return prompt.Length / sw.Elapsed.TotalSeconds;
}

static double LlamaPrefill(LLamaContext ctx, int[] prompt)
{
    var h = ctx.NativeHandle;
    h.MemoryClear(true);
    var sw = Stopwatch.StartNew();
    DecodeInBatches(h, new LLamaBatch(), prompt, 0, logitsAtEnd: true);
    h.Synchronize();
    return prompt.Length / sw.Elapsed.TotalSeconds;
}

// Both engines start from the same depth of context and decode the same tokens one at a time, slice tokens by one
// engine, then slice by the other, until done; each engine's rate counts only its own slices.
static (double Ours, double Theirs) Decode(InferenceSession s, LLamaContext ctx, int[] depth, int[] gen, int slice)
{
    var h = ctx.NativeHandle;
    var batch = new LLamaBatch();
    s.Reset();
    if (depth.Length > 0) s.Evaluate(depth);
    h.MemoryClear(true);
    DecodeInBatches(h, batch, depth, 0, logitsAtEnd: false);
    h.Synchronize();
    var ours = new Stopwatch();
    var theirs = new Stopwatch();
    for (int from = 0; from < gen.Length; from += slice)
    {
        int to = Math.Min(gen.Length, from + slice);
        ours.Start();
        for (int i = from; i < to; i++) s.Evaluate([gen[i]]);
        ours.Stop();
        theirs.Start();
        for (int i = from; i < to; i++)
        {
            batch.Clear();
            batch.Add((LLamaToken)gen[i], depth.Length + i, LLamaSeqId.Zero, true);
            Check(h.Decode(batch));
            h.Synchronize();
        }
        theirs.Stop();
    }
    return (gen.Length / ours.Elapsed.TotalSeconds, gen.Length / theirs.Elapsed.TotalSeconds);
}

// tokens at positions from.., BatchSize (512) at a time: llama_decode takes at most n_batch tokens per call
static void DecodeInBatches(SafeLLamaContextHandle h, LLamaBatch batch, int[] tokens, int from, bool logitsAtEnd)
{
    for (int i0 = 0; i0 < tokens.Length; i0 += 512)
    {
        batch.Clear();
        for (int i = i0; i < Math.Min(tokens.Length, i0 + 512); i++)
            batch.Add((LLamaToken)tokens[i], from + i, LLamaSeqId.Zero, logitsAtEnd && i == tokens.Length - 1);
        Check(h.Decode(batch));
    }
}

static void Check(DecodeResult r)
{
    if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama_decode returned {r}");
}

sealed record BenchOptions(string Model, int Prompt, int Gen, int Depth, int Threads, int Reps, int Slice)
{
    public static BenchOptions? Parse(string[] args)
    {
        string? model = null;
        int p = 512, n = 128, d = 0, t = Environment.ProcessorCount, r = 2, slice = 16;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--model" or "-m": model = args[i + 1]; break;
                case "-p": p = int.Parse(args[i + 1]); break;
                case "-n": n = int.Parse(args[i + 1]); break;
                case "-d": d = int.Parse(args[i + 1]); break;
                case "-t": t = int.Parse(args[i + 1]); break;
                case "-r": r = int.Parse(args[i + 1]); break;
                case "--slice": slice = int.Parse(args[i + 1]); break;
                default: return null;
            }
        }
        return model is null || slice < 1 ? null : new BenchOptions(model, p, n, d, t, r, slice);
    }
}
