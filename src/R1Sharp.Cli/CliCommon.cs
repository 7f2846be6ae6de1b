// Options shared by several verbs, and the one place where errors become a one-line message and an exit code.
using System.CommandLine;
using R1Sharp.Formats;
using R1Sharp.Tensors;

namespace R1Sharp.Cli;

internal static class CliCommon
{
    public static Option<string> ModelOption(bool required = true) => new("--model", "-m")
    {
        Description = "path to a GGUF model file",
        Required = required,
    };

    public static Option<bool> MmapOption() => new("--mmap")
    {
        Description = "keep the weights in the file mapping (pages shared between processes) instead of moving them in the background into huge-page memory (faster decode; the model answers from the mapping meanwhile)",
    };

    public static CacheTypeOptions CacheTypeOption() => new();

    /// <summary>
    /// The KV cache type options: --cache-type for keys and values, and llama.cpp's --cache-type-k (-ctk) and
    /// --cache-type-v (-ctv), each of which overrides it for its side.
    /// </summary>
    public sealed class CacheTypeOptions
    {
        private const string Types = "f32, f16 or q8_0";

        private readonly Option<string> _both = new("--cache-type")
        {
            Description = "how the KV cache stores keys and values: f32 (default), f16 (half the memory, as llama.cpp's default) or q8_0 (34 bytes per 32 values)",
            DefaultValueFactory = _ => "f32",
        };

        private readonly Option<string?> _k = new("--cache-type-k", "-ctk") { Description = $"the KV cache's key type ({Types}; default: --cache-type)" };
        private readonly Option<string?> _v = new("--cache-type-v", "-ctv") { Description = $"the KV cache's value type ({Types}; default: --cache-type)" };

        public void AddTo(Command command)
        {
            command.Add(_both);
            command.Add(_k);
            command.Add(_v);
        }

        /// <summary>The key and value types the options name.</summary>
        public (GgmlType K, GgmlType V) Parse(ParseResult r)
        {
            GgmlType both = CacheType("--cache-type", r.GetValue(_both));
            string? k = r.GetValue(_k), v = r.GetValue(_v);
            return (k is null ? both : CacheType("--cache-type-k", k), v is null ? both : CacheType("--cache-type-v", v));
        }

        private static GgmlType CacheType(string option, string? name) => name switch
        {
            "f32" => GgmlType.F32,
            "f16" => GgmlType.F16,
            "q8_0" => GgmlType.Q8_0,
            var other => throw new ArgumentException($"{option}: '{other}' is not a cache type; use {Types}"),
        };
    }

    public static Option<int> ThreadsOption() => new("--threads", "-t")
    {
        Description = "worker threads (default: all cores)",
        DefaultValueFactory = _ => 0,
    };

    /// <summary>Runs a verb; any failure prints "error: cause" on stderr and exits 1 (set R1SHARP_DEBUG=1 for the stack).</summary>
    public static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is GgufFormatException or SafetensorsFormatException or Conversion.CheckpointException or InvalidDataException or IOException or ArgumentException
                                  or NotSupportedException or InvalidOperationException or UnauthorizedAccessException
                                  or FormatException or OverflowException)
        {
            return Fail(e.Message, e);
        }
        catch (Exception e)
        {
            return Fail($"internal error: {e.GetType().Name}: {e.Message}", e);
        }
    }

    public static int Fail(string message, Exception? e = null)
    {
        Console.Out.Flush();
        Console.Error.WriteLine($"error: {FirstLine(message)}");
        if (e != null && Environment.GetEnvironmentVariable("R1SHARP_DEBUG") == "1") Console.Error.WriteLine(e);
        return 1;
    }

    private static string FirstLine(string s)
    {
        int i = s.IndexOfAny(['\r', '\n']);
        return i < 0 ? s : s[..i];
    }

    /// <summary>The texts of a .jsonl file holding one JSON string a line (empty lines skipped), with line numbers; a line
    /// that is not a JSON string is a FormatException naming it.</summary>
    public static IEnumerable<(int Line, string Text)> ReadJsonStringLines(string path)
    {
        int lineNo = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            string? s;
            try { s = System.Text.Json.JsonSerializer.Deserialize<string>(line); }
            catch (System.Text.Json.JsonException) { s = null; }
            yield return (lineNo, s ?? throw new FormatException($"{path}:{lineNo}: not a JSON string"));
        }
    }

    /// <summary>Parses "1,2,3" into ids; a clear error names the bad item.</summary>
    public static int[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("--tokens needs at least one token id, e.g. --tokens 1,2,3");
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out ids[i]) || ids[i] < 0)
                throw new ArgumentException($"--tokens: '{parts[i]}' is not a token id");
        return ids;
    }
}
