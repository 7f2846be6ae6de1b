// Tokenization speed, ours against llama.cpp's on the same vocabulary and text, alternating in one run.
// The vocabulary comes from a Hugging Face tokenizer.json; llama.cpp reads it from a vocab-only GGUF we write.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LLama;
using LLama.Common;
using R1Sharp.Formats;
using R1Sharp.Tokenization;

internal static class TokenizerBench
{
    public static int Run(string[] args)
    {
        string? json = null, textPath = null, pre = null;
        int reps = 3;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--tokenizer-json": json = args[i + 1]; break;
                case "--text": textPath = args[i + 1]; break;
                case "--pre": pre = args[i + 1]; break;
                case "-r": reps = int.Parse(args[i + 1]); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        if (json is null)
        {
            Console.Error.WriteLine("usage: R1Sharp.Bench tokenize --tokenizer-json PATH [--text FILE] [--pre NAME] [-r 3]");
            return 2;
        }
        string? config = Path.Combine(Path.GetDirectoryName(json)!, "tokenizer_config.json");
        var data = TokenizerData.FromHuggingFace(json, File.Exists(config) ? config : null, pre);
        var ours = new BpeTokenizer(data);

        string gguf = Path.Combine(Path.GetTempPath(), $"r1sharp-vocab-{Environment.ProcessId}.gguf");
        var w = new GgufWriter();
        w.SetMetadata("general.architecture", GgufValue.Of("llama"));
        foreach (var kv in data.ToGgufMetadata()) w.SetMetadata(kv.Key, kv.Value);
        w.Write(gguf);

        var docs = Documents(textPath);
        long bytes = docs.Sum(d => (long)Encoding.UTF8.GetByteCount(d));
        try
        {
            using var weights = LLamaWeights.LoadFromFile(new ModelParams(gguf) { VocabOnly = true });
            // warm both
            foreach (var d in docs.Take(20)) { ours.Encode(d); weights.NativeHandle.Tokenize(d, false, true, Encoding.UTF8); }
            double oursBest = 0, theirsBest = 0;
            long oursTokens = 0, theirsTokens = 0;
            for (int r = 0; r < reps; r++)
            {
                var sw = Stopwatch.StartNew();
                oursTokens = 0;
                foreach (var d in docs) oursTokens += ours.Encode(d).Length;
                oursBest = Math.Max(oursBest, bytes / sw.Elapsed.TotalSeconds / 1e6);
                sw.Restart();
                theirsTokens = 0;
                foreach (var d in docs) theirsTokens += weights.NativeHandle.Tokenize(d, false, true, Encoding.UTF8).Length;
                theirsBest = Math.Max(theirsBest, bytes / sw.Elapsed.TotalSeconds / 1e6);
            }
            Console.WriteLine($"text: {docs.Count} documents, {bytes / 1e6:F2} MB; tokens: ours {oursTokens}, llama.cpp {theirsTokens}; best of {reps}");
            Console.WriteLine("| tokenizer | MB/s |");
            Console.WriteLine("| --- | ---: |");
            Console.WriteLine($"| r1sharp | {oursBest:F2} |");
            Console.WriteLine($"| llama.cpp | {theirsBest:F2} |");
            Console.WriteLine($"| ratio | {oursBest / theirsBest:F2}x |");
        }
        finally
        {
            File.Delete(gguf);
        }
        return 0;
    }

    /// <summary>The text as documents of about 4 KB: a file, or the tokenizer test corpus repeated to about 4 MB.</summary>
    private static List<string> Documents(string? path)
    {
        string text;
        if (path != null) text = File.ReadAllText(path);
        else
        {
            string corpus = FindCorpus() ?? throw new FileNotFoundException("no --text given and tests/R1Sharp.Tests/Tokenization/oracle/corpus.json not found");
            var strings = JsonSerializer.Deserialize<string[]>(File.ReadAllText(corpus))!;
            var sb = new StringBuilder();
            while (sb.Length < 4_000_000) foreach (var s in strings) sb.Append(s).Append('\n');
            text = sb.ToString();
        }
        var docs = new List<string>();
        for (int i = 0; i < text.Length; i += 4096)
        {
            int end = Math.Min(text.Length, i + 4096);
            if (end < text.Length && char.IsHighSurrogate(text[end - 1])) end--;
            docs.Add(text[i..end]);
            i = end - 4096;
        }
        return docs;
    }

    private static string? FindCorpus()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir != null; dir = dir.Parent)
        {
            string p = Path.Combine(dir.FullName, "tests", "R1Sharp.Tests", "Tokenization", "oracle", "corpus.json");
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
