// Side-by-side benchmark: R1Sharp and llama.cpp (LLamaSharp) on the same GGUF, same thread count, in one run,
// alternating engine by engine each repetition so both see the same machine state. Prints both and the ratio, and
// decode as a fraction of the read bandwidth measured between the runs.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- --model FILE [-p 512] [-n 128] [-d 0] [-t 2] [-r 2]
// -d DEPTH times decode after DEPTH tokens of context (llama-bench's -d): attention then reads the KV cache too.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- tokenize --tokenizer-json PATH [--text FILE] [-r 3]
using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;
using R1Sharp.Engine;
using R1Sharp.Sampling;

if (args.Length > 0 && args[0] == "tokenize") return TokenizerBench.Run(args[1..]);

var opts = BenchOptions.Parse(args);
if (opts is null)
{
    Console.Error.WriteLine("usage: R1Sharp.Bench --model FILE [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS]");
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
using (var session = new InferenceSession(lm.Model, Math.Max(opts.Prompt, opts.Depth + opts.Gen) + 2))
{
    var p = new ModelParams(opts.Model)
    {
        ContextSize = (uint)(Math.Max(opts.Prompt, opts.Depth + opts.Gen) + 16),
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

    // warm both: page in the weights, JIT our kernels
    session.Evaluate(Random(8));
    LlamaRun(ctx, Random(8), [], 0);
    bytesPerToken = ReadBandwidth.BytesPerToken(lm.File);
    threads = lm.Pool.Threads;

    for (int rep = 0; rep < opts.Reps; rep++)
    {
        var prompt = Random(opts.Prompt);
        var gen = Random(opts.Gen);
        var depth = Random(opts.Depth);
        ours.Add(OurRun(session, prompt, depth, gen));
        theirs.Add(LlamaRun(ctx, prompt, depth, gen.Length, gen));
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

static (double, double) OurRun(InferenceSession s, int[] prompt, int[] depth, int[] gen)
{
    s.Reset();
    var sw = Stopwatch.StartNew();
    if (prompt.Length > 0) s.Evaluate(prompt);
    double pp = prompt.Length / sw.Elapsed.TotalSeconds;
    s.Reset();
    if (depth.Length > 0) s.Evaluate(depth);
    sw.Restart();
    foreach (int t in gen) s.Evaluate([t]);
    double tg = gen.Length / sw.Elapsed.TotalSeconds;
    return (pp, tg);
}

static (double, double) LlamaRun(LLamaContext ctx, int[] prompt, int[] depth, int genCount, int[]? gen = null)
{
    var h = ctx.NativeHandle;
    var batch = new LLamaBatch();
    h.MemoryClear(true);
    var sw = Stopwatch.StartNew();
    DecodeInBatches(h, batch, prompt, 0, logitsAtEnd: true);
    h.Synchronize();
    double pp = prompt.Length / sw.Elapsed.TotalSeconds;
    h.MemoryClear(true);
    DecodeInBatches(h, batch, depth, 0, logitsAtEnd: false);
    h.Synchronize();
    sw.Restart();
    for (int i = 0; i < genCount; i++)
    {
        batch.Clear();
        batch.Add((LLamaToken)(gen?[i] ?? 1), depth.Length + i, LLamaSeqId.Zero, true);
        Check(h.Decode(batch));
        h.Synchronize();
    }
    double tg = genCount / sw.Elapsed.TotalSeconds;
    return (pp, tg);
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

sealed record BenchOptions(string Model, int Prompt, int Gen, int Depth, int Threads, int Reps)
{
    public static BenchOptions? Parse(string[] args)
    {
        string? model = null;
        int p = 512, n = 128, d = 0, t = Environment.ProcessorCount, r = 2;
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
                default: return null;
            }
        }
        return model is null ? null : new BenchOptions(model, p, n, d, t, r);
    }
}
