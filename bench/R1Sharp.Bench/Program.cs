// Side-by-side benchmark: R1Sharp and llama.cpp (LLamaSharp) on the same GGUF, same thread count, in one run,
// alternating engine by engine so both see the same machine state: each repetition prefills with one engine then the
// other, and decodes in slices of --slice tokens taken in turn (a decode is bound by memory bandwidth, which on a
// shared machine moves within seconds). Prints both and the ratio, and decode as a fraction of the read bandwidth
// measured between the repetitions.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- --model FILE [-p 512] [-n 128] [-d 0] [-t 2] [-r 2] [--slice 16]
// -d DEPTH times prefill and decode after DEPTH tokens of context (llama-bench's -d): attention then reads the KV cache
// too. The context is filled once per cache type by each engine (the same tokens; the fill's rate is printed) and
// every measurement cuts both back to it afterwards.
// --cache-type f32|f16|q8_0 (a comma-separated list runs each in turn within every repetition), -ctk/-ctv for keys or
// values alone: the same KV cache types for both engines. -fa 0|1 sets llama.cpp's flash attention; by default it is
// on where the V cache is q8_0 (llama.cpp refuses a quantized V cache without it) and off elsewhere. --engines ours
// leaves llama.cpp out (its columns print NaN), for comparing cache types alone.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- tokenize --tokenizer-json PATH [--text FILE] [-r 3]
//   dotnet run --project bench/R1Sharp.Bench -c Release -- mapped --engine ours|llama --model FILE (MappedDecode.cs)
//   dotnet run --project bench/R1Sharp.Bench -c Release -- kernels --types iq4_xs,iq3_s [--tokens 1] (KernelVsGgml.cs)
using System.Diagnostics;
using LLama;
using LLama.Common;
using LLama.Native;
using R1Sharp.Engine;
using R1Sharp.Sampling;
using R1Sharp.Tensors;

if (args.Length > 0 && args[0] == "tokenize") return TokenizerBench.Run(args[1..]);
if (args.Length > 0 && args[0] == "mapped") return MappedDecode.Run(args[1..]);
if (args.Length > 0 && args[0] == "kernels") return KernelVsGgml.Run(args[1..]);

var opts = BenchOptions.Parse(args, out string? error);
if (opts is null)
{
    if (error != null) Console.Error.WriteLine($"error: {error}");
    Console.Error.WriteLine("usage: R1Sharp.Bench --model FILE [-p 512] [-n 128] [-d DEPTH] [-t THREADS] [-r REPS] [--slice TOKENS] " +
                            "[--cache-type f32|f16|q8_0[,...]] [-ctk TYPE] [-ctv TYPE] [-fa auto|0|1] [--engines both|ours]");
    return 2;
}
NativeLibraryConfig.All.WithLogCallback((level, message) => { if (level == LLamaLogLevel.Error) Console.Error.Write(message); });

var caches = opts.Caches;
var ours = caches.Select(_ => new List<(double Pp, double Tg)>()).ToArray();
var theirs = caches.Select(_ => new List<(double Pp, double Tg)>()).ToArray();
var fills = new (double Ours, double Theirs)[caches.Count];
var bandwidth = new List<double>();
double bytesPerToken = 0;
int threads = 0;
long fileBytes = new FileInfo(opts.Model).Length;
int context = Math.Max(opts.Depth + Math.Max(opts.Prompt, opts.Gen), 64 + 48) + 16; // the warm-up too

using (var lm = LoadedModel.Load(opts.Model, opts.Threads))
{
    var baseParams = new ModelParams(opts.Model) { GpuLayerCount = 0 };
    using var weights = opts.OursOnly ? null : LLamaWeights.LoadFromFile(baseParams);
    // one session and one llama.cpp context per cache type, each holding the same DEPTH tokens of context throughout
    var sessions = caches.Select(c => new InferenceSession(lm.Model, context, c.K, c.V)).ToArray();
    var contexts = caches.Select(c => weights?.CreateContext(new ModelParams(opts.Model)
    {
        ContextSize = (uint)context,
        BatchSize = 512,
        UBatchSize = 512,
        Threads = opts.Threads,
        BatchThreads = opts.Threads,
        GpuLayerCount = 0,
        TypeK = LlamaType(c.K),
        TypeV = LlamaType(c.V),
        FlashAttention = opts.FlashAttention(c),
    })).ToArray();
    try
    {
        int vocab = lm.Config.VocabSize;
        var rng = new Xoshiro256(99);
        int[] Random(int n) => Enumerable.Range(0, n).Select(_ => (int)(rng.Next() % (ulong)Math.Min(vocab, lm.Tokenizer.VocabSize))).ToArray();

        // warm both, ours once the weights are in memory: page in the weights, and run a short prefill and decode of each
        // (past .NET's tiered compilation, which optimizes a method again after about 30 calls)
        lm.InMemory.GetAwaiter().GetResult();
        for (int c = 0; c < caches.Count; c++)
        {
            Prefill(sessions[c], contexts[c], Random(64), 0);
            Decode(sessions[c], contexts[c], 64, Random(48), opts.Slice);
        }
        bytesPerToken = ReadBandwidth.BytesPerToken(lm.File);
        threads = lm.Pool.Threads;

        // the context every measurement starts from, filled once per cache type by both engines (the same tokens)
        var depth = Random(opts.Depth);
        for (int c = 0; c < caches.Count && opts.Depth > 0; c++)
        {
            fills[c] = Prefill(sessions[c], contexts[c], depth, 0);
            Console.Error.WriteLine($"{caches[c]}: filled {opts.Depth} tokens of context: r1sharp {fills[c].Ours:F2} tok/s, llama.cpp {fills[c].Theirs:F2} tok/s");
        }

        for (int rep = 0; rep < opts.Reps; rep++)
        {
            var prompt = Random(opts.Prompt);
            var gen = Random(opts.Gen);
            for (int c = 0; c < caches.Count; c++)
            {
                var (ourPp, theirPp) = Prefill(sessions[c], contexts[c], prompt, opts.Depth);
                var (ourTg, theirTg) = Decode(sessions[c], contexts[c], opts.Depth, gen, opts.Slice);
                ours[c].Add((ourPp, ourTg));
                theirs[c].Add((theirPp, theirTg));
                Console.Error.WriteLine($"rep {rep + 1} {caches[c]}: r1sharp pp {ourPp:F2} tg {ourTg:F2} | llama.cpp pp {theirPp:F2} tg {theirTg:F2}");
            }
            bandwidth.Add(Enumerable.Range(0, 3).Max(_ => ReadBandwidth.Measure(lm.File, threads)));
            Console.Error.WriteLine($"rep {rep + 1}: read {bandwidth[^1] / 1e9:F1} GB/s; load average {LoadAverage()}");
        }
    }
    finally
    {
        foreach (var s in sessions) s.Dispose();
        foreach (var x in contexts) x?.Dispose();
    }
}

string at = opts.Depth > 0 ? $" @ d{opts.Depth}" : "";
Console.WriteLine($"model: {opts.Model} ({fileBytes / 1e9:F2} GB), threads {opts.Threads}, {opts.Reps} reps, load average {LoadAverage()}");
Console.WriteLine($"| engine | KV cache (K/V) | pp{opts.Prompt}{at} tok/s | tg{opts.Gen}{at} tok/s |");
Console.WriteLine("| --- | --- | ---: | ---: |");
double bw = bandwidth.Average();
var lines = new List<string>();
for (int c = 0; c < caches.Count; c++)
{
    string fa = opts.FlashAttention(caches[c]) ? "flash attention" : "no flash attention";
    double oPp = ours[c].Average(r => r.Pp), oTg = ours[c].Average(r => r.Tg);
    double lPp = theirs[c].Average(r => r.Pp), lTg = theirs[c].Average(r => r.Tg);
    Console.WriteLine($"| r1sharp | {caches[c]} | {oPp:F2} | {oTg:F2} |");
    Console.WriteLine($"| llama.cpp ({fa}) | {caches[c]} | {lPp:F2} | {lTg:F2} |");
    Console.WriteLine($"| ratio | {caches[c]} | {oPp / lPp:F2}x | {oTg / lTg:F2}x |");
    // each repetition runs both engines back to back: the median of the per-repetition ratios is the figure least
    // moved by a burst of load that falls on one engine's run
    int cc = c;
    double MedianRatio(Func<(double Pp, double Tg), double> f) => Median(ours[cc].Zip(theirs[cc], (o, l) => f(o) / f(l)).ToList());
    Console.WriteLine($"| median of per-rep ratios | {caches[c]} | {MedianRatio(r => r.Pp):F2}x | {MedianRatio(r => r.Tg):F2}x |");
    if (opts.Depth > 0) lines.Add($"{caches[c]}: filling {opts.Depth} tokens r1sharp {fills[c].Ours:F2} tok/s, llama.cpp {fills[c].Theirs:F2} tok/s ({fills[c].Ours / fills[c].Theirs:F2}x)");
    lines.Add($"{caches[c]}: decode reads about {bytesPerToken / 1e9:F3} GB of weights per token: r1sharp {oTg * bytesPerToken / 1e9:F1} GB/s = " +
              $"{oTg * bytesPerToken / bw:P0} of the read bandwidth, llama.cpp {lTg * bytesPerToken / 1e9:F1} GB/s = {lTg * bytesPerToken / bw:P0}");
}
Console.WriteLine($"read bandwidth {bw / 1e9:F1} GB/s ({threads} threads, the weights summed between repetitions)");
lines.ForEach(Console.WriteLine);
return 0;

// ggml's type for a cache type of ours (the same numbering)
static GGMLType LlamaType(GgmlType t) => (GGMLType)(int)t;

static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static double Median(List<double> xs)
{
    xs.Sort();
    return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2;
}

// Prompt tokens after the first FROM positions of context (kept from earlier): one engine, then the other; afterwards
// both hold FROM positions again, unless FROM is 0 and the prompt is the context to keep (the depth's fill).
static (double Ours, double Theirs) Prefill(InferenceSession s, LLamaContext? ctx, int[] prompt, int from)
{
    s.Truncate(from);
    var sw = Stopwatch.StartNew();
    if (prompt.Length > 0) s.Evaluate(prompt);
    double ours = prompt.Length / sw.Elapsed.TotalSeconds;
    if (ctx is null) return (ours, double.NaN);
    var h = ctx.NativeHandle;
    Forget(h, from);
    sw.Restart();
    DecodeInBatches(h, new LLamaBatch(), prompt, from, logitsAtEnd: true);
    h.Synchronize();
    double theirs = prompt.Length / sw.Elapsed.TotalSeconds;
    if (from > 0)
    {
        s.Truncate(from);
        Forget(h, from);
    }
    return (ours, theirs);
}

// llama.cpp's sequence 0 cut back to its first FROM positions
static void Forget(SafeLLamaContextHandle h, int from)
{
    if (from == 0) h.MemoryClear(true);
    else h.MemorySequenceRemove(LLamaSeqId.Zero, (LLamaPos)from, (LLamaPos)(-1));
}

// Both engines start from the same FROM positions of context and decode the same tokens one at a time, slice tokens by
// one engine, then slice by the other, until done; each engine's rate counts only its own slices. Both are cut back
// to FROM positions afterwards.
static (double Ours, double Theirs) Decode(InferenceSession s, LLamaContext? ctx, int from, int[] gen, int slice)
{
    var h = ctx?.NativeHandle;
    var batch = new LLamaBatch();
    s.Truncate(from);
    if (h != null) Forget(h, from);
    var ours = new Stopwatch();
    var theirs = new Stopwatch();
    for (int i0 = 0; i0 < gen.Length; i0 += slice)
    {
        int to = Math.Min(gen.Length, i0 + slice);
        ours.Start();
        for (int i = i0; i < to; i++) s.Evaluate([gen[i]]);
        ours.Stop();
        theirs.Start();
        for (int i = i0; i < to && h != null; i++)
        {
            batch.Clear();
            batch.Add((LLamaToken)gen[i], from + i, LLamaSeqId.Zero, true);
            Check(h.Decode(batch));
            h.Synchronize();
        }
        theirs.Stop();
    }
    s.Truncate(from);
    if (h != null) Forget(h, from);
    return (gen.Length / ours.Elapsed.TotalSeconds, h is null ? double.NaN : gen.Length / theirs.Elapsed.TotalSeconds);
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

/// <summary>A KV cache's key and value types (the same for both engines).</summary>
sealed record CacheTypes(GgmlType K, GgmlType V)
{
    public override string ToString() => K == V ? GgmlTypeInfo.Name(K) : $"{GgmlTypeInfo.Name(K)}/{GgmlTypeInfo.Name(V)}";
}

sealed record BenchOptions(string Model, int Prompt, int Gen, int Depth, int Threads, int Reps, int Slice, IReadOnlyList<CacheTypes> Caches, bool? Flash, bool OursOnly)
{
    /// <summary>
    /// llama.cpp's flash attention: as asked, else on where the V cache is quantized (llama.cpp refuses a quantized V
    /// cache without it).
    /// </summary>
    public bool FlashAttention(CacheTypes c) => Flash ?? c.V == GgmlType.Q8_0;

    public static BenchOptions? Parse(string[] args, out string? error)
    {
        error = null;
        string? model = null, k = null, v = null;
        string both = "f32";
        bool? flash = null;
        bool oursOnly = false;
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
                case "--engines":
                    if (args[i + 1] is not ("both" or "ours")) { error = $"--engines takes both or ours, not '{args[i + 1]}'"; return null; }
                    oursOnly = args[i + 1] == "ours";
                    break;
                case "--cache-type": both = args[i + 1]; break;
                case "--cache-type-k" or "-ctk": k = args[i + 1]; break;
                case "--cache-type-v" or "-ctv": v = args[i + 1]; break;
                case "-fa" or "--flash-attn":
                    flash = args[i + 1] switch { "1" or "on" => true, "0" or "off" => false, _ => null };
                    if (flash is null && args[i + 1] != "auto") { error = $"-fa takes auto, 0 or 1, not '{args[i + 1]}'"; return null; }
                    break;
                default: return null;
            }
        }
        if (model is null || slice < 1 || p < 0 || n < 1 || d < 0 || r < 1) return null;
        var caches = new List<CacheTypes>();
        foreach (string name in both.Split(','))
        {
            GgmlType? Type(string? s)
            {
                if (!GgmlTypeInfo.TryParse(s!, out var type) || !KvCache.Types.Contains(type)) return null;
                return type;
            }
            var kt = Type(k ?? name);
            var vt = Type(v ?? name);
            if (kt is null || vt is null)
            {
                error = $"a KV cache type is f32, f16 or q8_0, not '{(kt is null ? k ?? name : v ?? name)}'";
                return null;
            }
            caches.Add(new CacheTypes(kt.Value, vt.Value));
        }
        return new BenchOptions(model, p, n, d, t, r, slice, caches, flash, oursOnly);
    }
}
