// Decode from a file larger than memory, one engine per process (they would share the page cache in one): the
// model is mapped, not copied; each token reads what the page cache does not hold from disk. Prints one JSON line:
// decode tokens/s, the CPU seconds per token (all threads), the bytes this process read from storage per token (/proc/self/io read_bytes), its major page
// faults per token, the machine's pgpgin per token (/proc/vmstat), and the resident memory at the end (VmRSS, of
// which file-backed and anonymous). Run the engines in turn, e.g. ours, llama, ours, llama.
//   dotnet run --project bench/R1Sharp.Bench -c Release -- mapped --engine ours|llama --model FILE [-n 16] [--warmup 4] [-t 2] [--seed 7]
using System.Diagnostics;
using System.Text.Json;
using LLama;
using LLama.Common;
using LLama.Native;
using R1Sharp.Engine;
using R1Sharp.Formats;
using R1Sharp.Sampling;

internal static class MappedDecode
{
    public static int Run(string[] args)
    {
        string? engine = null, model = null;
        int n = 16, warmup = 4, threads = Environment.ProcessorCount;
        ulong seed = 7;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--engine": engine = args[i + 1]; break;
                case "--model" or "-m": model = args[i + 1]; break;
                case "-n": n = int.Parse(args[i + 1]); break;
                case "--warmup": warmup = int.Parse(args[i + 1]); break;
                case "-t": threads = int.Parse(args[i + 1]); break;
                case "--seed": seed = ulong.Parse(args[i + 1]); break;
                default: return Usage();
            }
        }
        if (model is null || engine is not ("ours" or "llama") || n < 1) return Usage();

        int vocab;
        using (var f = GgufFile.Open(model)) vocab = f.GetStringArray("tokenizer.ggml.tokens")!.Length;
        var rng = new Xoshiro256(seed);
        int[] tokens = Enumerable.Range(0, 1 + warmup + n).Select(_ => (int)(rng.Next() % (ulong)vocab)).ToArray();
        long memAvailable = Meminfo("MemAvailable");

        var load = Stopwatch.StartNew();
        Func<int, int, float> step; // (token, position) → a logit, so the pass cannot be skipped
        IDisposable owner;
        string? staysMapped = null;
        if (engine == "ours")
        {
            var lm = LoadedModel.Load(model, threads);
            staysMapped = lm.StaysMapped;
            var session = new InferenceSession(lm.Model, tokens.Length + 8);
            step = (t, _) => session.Evaluate([t])[0];
            owner = new Both(session, lm);
        }
        else
        {
            NativeLibraryConfig.All.WithLogCallback((level, message) => { if (level >= LLamaLogLevel.Warning || Environment.GetEnvironmentVariable("R1SHARP_BENCH_LOG") == "1") Console.Error.Write(message); });
            // llama.cpp's default moves the matrices it can repack into anonymous memory (CPU_REPACK buffers), which
            // fails for a file larger than memory (26.6 GB asked for here); without them (--no-repack) it reads the mapping
            NativeApi.llama_max_devices(); // loads the native library (LLamaModelParams.Default calls into it directly)
            var mp = LLamaModelParams.Default();
            mp.n_gpu_layers = 0;
            mp.load_mode = LLamaLoadMode.MemoryMap;
            mp.use_extra_bufts = Environment.GetEnvironmentVariable("R1SHARP_BENCH_REPACK") == "1";
            var weights = SafeLlamaModelHandle.LoadFromFile(model, mp);
            var cp = LLamaContextParams.Default();
            cp.n_ctx = (uint)(tokens.Length + 16);
            cp.n_batch = 64;
            cp.n_ubatch = 64;
            cp.n_threads = threads;
            cp.n_threads_batch = threads;
            var ctx = SafeLLamaContextHandle.Create(weights, cp);
            var batch = new LLamaBatch();
            step = (t, pos) =>
            {
                batch.Clear();
                batch.Add((LLamaToken)t, pos, LLamaSeqId.Zero, true);
                if (ctx.Decode(batch) != DecodeResult.Ok) throw new InvalidOperationException("llama_decode failed");
                return ctx.GetLogitsIth(0)[0];
            };
            owner = new Both(ctx, weights);
        }
        double loadSeconds = load.Elapsed.TotalSeconds;
        using (owner)
        {
            float sink = 0;
            for (int i = 0; i <= warmup; i++) sink += step(tokens[i], i);
            var (read0, fault0, pgpgin0) = Counters();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int i = warmup + 1; i < tokens.Length; i++) sink += step(tokens[i], i);
            double seconds = sw.Elapsed.TotalSeconds;
            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            var (read1, fault1, pgpgin1) = Counters();
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["engine"] = engine,
                ["file_gb"] = new FileInfo(model).Length / 1e9,
                ["mem_available_gb_at_start"] = memAvailable / 1e9,
                ["stays_mapped"] = staysMapped,
                ["threads"] = threads,
                ["load_s"] = Math.Round(loadSeconds, 2),
                ["tokens"] = n,
                ["tok_s"] = Math.Round(n / seconds, 3),
                ["cpu_s_per_token"] = Math.Round(cpu / n, 2),
                ["read_mb_per_token"] = Math.Round((read1 - read0) / 1e6 / n, 1),
                ["major_faults_per_token"] = Math.Round((fault1 - fault0) / (double)n, 1),
                ["pgpgin_mb_per_token"] = Math.Round((pgpgin1 - pgpgin0) / 1e3 / n, 1),
                ["vm_rss_gb"] = Math.Round(Status("VmRSS") / 1e9, 2),
                ["rss_file_gb"] = Math.Round(Status("RssFile") / 1e9, 2),
                ["rss_anon_gb"] = Math.Round(Status("RssAnon") / 1e9, 2),
                ["vm_hwm_gb"] = Math.Round(Status("VmHWM") / 1e9, 2),
                ["logit_sum"] = sink,
            }));
        }
        return 0;
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: R1Sharp.Bench mapped --engine ours|llama --model FILE [-n 16] [--warmup 4] [-t THREADS] [--seed S]");
        return 2;
    }

    /// <summary>This process's bytes read from storage, its major faults, and the machine's pgpgin (KiB).</summary>
    private static (long ReadBytes, long MajorFaults, long PgpginKb) Counters()
    {
        long read = File.ReadLines("/proc/self/io").Where(l => l.StartsWith("read_bytes:")).Select(l => long.Parse(l[11..].Trim())).Single();
        // /proc/self/stat: field 12 is majflt; the command name (field 2) may hold spaces, so count after its ')'
        string stat = File.ReadAllText("/proc/self/stat");
        long majflt = long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[9]);
        long pgpgin = File.ReadLines("/proc/vmstat").Where(l => l.StartsWith("pgpgin ")).Select(l => long.Parse(l[7..])).Single();
        return (read, majflt, pgpgin);
    }

    private static long Status(string key) => Kb("/proc/self/status", key);

    private static long Meminfo(string key) => Kb("/proc/meminfo", key);

    private static long Kb(string file, string key) =>
        File.ReadLines(file).Where(l => l.StartsWith(key + ":")).Select(l => long.Parse(l[(key.Length + 1)..].Trim().Split(' ')[0]) * 1024).Single();

    private sealed class Both(IDisposable first, IDisposable second) : IDisposable
    {
        public void Dispose()
        {
            first.Dispose();
            second.Dispose();
        }
    }
}
