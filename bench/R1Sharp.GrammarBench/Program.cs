// Grammar benchmark over real schemas (JSONSchemaBench's MaskBench) and a real vocabulary (Qwen2.5's tokenizer.json):
// schema compile time, and the time to compute the token mask at each step of feeding a valid instance token by
// token (the first request on a grammar, with token sets still to compute, and a second request on the same
// compiled grammar), plus the check of one token ("try the sampled token first"). Each figure is given as wall
// time and as the thread's CPU time (clock_gettime(CLOCK_THREAD_CPUTIME_ID)), which a loaded machine inflates less.
//   dotnet run --project bench/R1Sharp.GrammarBench -c Release -- [--tokenizer DIR] [--corpus FILE.json.xz] [--schemas N] [--threads-note TEXT]
// `decode --model FILE` measures decode tokens/s with and without a grammar instead (DecodeBench.cs).
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using R1Sharp.Grammar;
using R1Sharp.Tokenization;

if (args is ["decode", ..]) return DecodeBench.Run(args[1..]);

string tokDir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "r1sharp", "hf-tokenizers-v1", "node_modules", "@lenml", "tokenizer-qwen2_5", "models");
string? corpus = null;
int maxSchemas = 200;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--tokenizer": tokDir = args[++i]; break;
        case "--corpus": corpus = args[++i]; break;
        case "--schemas": maxSchemas = int.Parse(args[++i]); break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 1;
    }
}
corpus ??= FindCorpus();
if (corpus is null || !File.Exists(Path.Combine(tokDir, "tokenizer.json")))
{
    Console.Error.WriteLine("usage: R1Sharp.GrammarBench [--tokenizer DIR with tokenizer.json] [--corpus jsonschemabench-maskbench.json.xz] [--schemas N]");
    return 1;
}

var sw = Stopwatch.StartNew();
var tokenizer = new BpeTokenizer(TokenizerData.FromHuggingFace(Path.Combine(tokDir, "tokenizer.json"), Path.Combine(tokDir, "tokenizer_config.json")));
var vocab = GrammarVocabulary.FromTokenizer(tokenizer);
Console.WriteLine($"vocabulary: {vocab.Size} tokens, trie of {vocab.TrieNodeCount} nodes, built in {sw.Elapsed.TotalMilliseconds:F0} ms");

using var doc = LoadCorpus(corpus);
var entries = doc.RootElement.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
int step = Math.Max(1, entries.Count / maxSchemas);
var compileMs = new List<double>();
var coldUs = new List<double>();
var warmUs = new List<double>();
var checkUs = new List<double>();
var compileCpuMs = new List<double>();
var coldCpuUs = new List<double>();
var warmCpuUs = new List<double>();
int refused = 0, used = 0, tokens = 0, setsComputed = 0;
double setMs = 0;
var mask = new ulong[vocab.MaskWords];
// warm up the JIT on one schema, outside the figures
Run(CompiledGrammar.Create(JsonSchemaCompiler.Compile("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}"""), vocab),
    "{\"a\":\"x y\",\"b\":12}", null, null, null);

for (int i = 0; i < entries.Count && used < maxSchemas; i += step)
{
    var e = entries[i].Value;
    string? instance = null;
    foreach (var t in e.GetProperty("tests").EnumerateArray())
        if (t.GetProperty("valid").GetBoolean()) { instance = JsonText.Canonical(t.GetProperty("data")); break; }
    if (instance is null) continue;
    string schema = JsonText.Canonical(e.GetProperty("schema"));
    var t0 = Stopwatch.GetTimestamp();
    double c0 = ThreadCpu.Microseconds();
    CompiledGrammar g;
    try { g = CompiledGrammar.Create(JsonSchemaCompiler.Compile(schema), vocab); }
    catch (GrammarException) { refused++; continue; }
    compileMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    compileCpuMs.Add((ThreadCpu.Microseconds() - c0) / 1000);
    used++;
    if (!Run(g, instance, coldUs, checkUs, coldCpuUs)) continue;
    setsComputed += g.TokenSetsComputed;
    setMs += g.TokenSetTime.TotalMilliseconds;
    Run(g, instance, warmUs, null, warmCpuUs);
}

Console.WriteLine($"{used} schemas compiled ({refused} refused) of {entries.Count} (every {step}); {tokens} tokens fed per pass");
Console.WriteLine($"token sets computed: {setsComputed} in {setMs:F0} ms ({(setsComputed == 0 ? 0 : setMs / setsComputed):F2} ms each); {vocab.SharedTokenSets} held in the shared cache");
Report("compile (ms)", compileMs);
Report("compile, CPU (ms)", compileCpuMs);
Report("mask, first request (µs)", coldUs);
Report("mask, first request, CPU", coldCpuUs);
Report("mask, second request (µs)", warmUs);
Report("mask, second request, CPU", warmCpuUs);
Report("one token's check (µs)", checkUs);
return 0;

bool Run(CompiledGrammar g, string text, List<double>? maskTimes, List<double>? checkTimes, List<double>? maskCpu)
{
    int[] ids = tokenizer.Encode(text, parseSpecial: false);
    var m = g.CreateMatcher();
    foreach (int id in ids)
    {
        long a = Stopwatch.GetTimestamp();
        double ca = ThreadCpu.Microseconds();
        m.FillMask(mask);
        maskCpu?.Add(ThreadCpu.Microseconds() - ca);
        maskTimes?.Add(Stopwatch.GetElapsedTime(a).TotalMicroseconds);
        long b = Stopwatch.GetTimestamp();
        bool ok = m.IsAllowed(id);
        checkTimes?.Add(Stopwatch.GetElapsedTime(b).TotalMicroseconds);
        if (!ok || !m.Accept(id)) return false;
        if (maskTimes == coldUs) tokens++;
    }
    return true;
}

static void Report(string what, List<double> xs)
{
    if (xs.Count == 0) { Console.WriteLine($"{what}: none"); return; }
    xs.Sort();
    double P(double q) => xs[Math.Min(xs.Count - 1, (int)(q * xs.Count))];
    Console.WriteLine($"{what,-28} n={xs.Count,6}  p50 {P(0.5),9:F1}  p90 {P(0.9),9:F1}  p99 {P(0.99),9:F1}  max {xs[^1],9:F1}  mean {xs.Average(),9:F1}");
}

static string? FindCorpus()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
    {
        string c = Path.Combine(d.FullName, "shared", "data", "jsonschemabench-maskbench.json.xz");
        if (File.Exists(c)) return c;
    }
    return null;
}

static JsonDocument LoadCorpus(string path)
{
    var psi = new ProcessStartInfo("xz", ["-dc", path]) { RedirectStandardOutput = true };
    using var p = Process.Start(psi)!;
    var ms = new MemoryStream();
    p.StandardOutput.BaseStream.CopyTo(ms);
    p.WaitForExit();
    return JsonDocument.Parse(ms.ToArray(), new JsonDocumentOptions { MaxDepth = 2048 });
}

internal static partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Sec; public long Nsec; }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out Timespec ts);

    private const int ClockProcessCpuTimeId = 2;

    /// <summary>CPU time of the calling thread in microseconds (Linux).</summary>
    public static double Microseconds() => ClockGetTime(ClockThreadCpuTimeId, out var ts) == 0 ? ts.Sec * 1e6 + ts.Nsec / 1e3 : 0;

    /// <summary>CPU time of the whole process (every thread) in microseconds (Linux).</summary>
    public static double ProcessMicroseconds() => ClockGetTime(ClockProcessCpuTimeId, out var ts) == 0 ? ts.Sec * 1e6 + ts.Nsec / 1e3 : 0;
}
