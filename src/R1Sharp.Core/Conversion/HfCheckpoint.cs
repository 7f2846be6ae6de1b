// A Hugging Face checkpoint folder: config.json and the safetensors shards (one model.safetensors, or the parts named
// by model.safetensors.index.json), every shard memory-mapped and validated before a byte is converted, so a missing
// shard or a tensor the index promises but no shard holds is a one-line error up front, not after an hour of work.
using System.Text.Json;
using R1Sharp.Formats;

namespace R1Sharp.Conversion;

/// <summary>A bad or incomplete checkpoint; the message is one line naming the file (and tensor) at fault.</summary>
public sealed class CheckpointException(string message) : Exception(message);

public sealed class HfCheckpoint : IDisposable
{
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, (SafetensorsFile File, SafetensorsTensorInfo Info)> _tensors = new(StringComparer.Ordinal);

    private HfCheckpoint(string dir, JsonDocument config)
    {
        Directory = dir;
        ConfigDocument = config;
    }

    public string Directory { get; }

    /// <summary>config.json as parsed.</summary>
    public JsonDocument ConfigDocument { get; }

    public JsonElement Config => ConfigDocument.RootElement;

    /// <summary>Every tensor name of the checkpoint.</summary>
    public IEnumerable<string> TensorNames => _tensors.Keys;

    /// <summary>Sum of the shards' sizes.</summary>
    public long TotalBytes => _files.Sum(f => f.FileSize);

    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The tensor <paramref name="name"/>; a checkpoint without it is an error naming it.</summary>
    public (SafetensorsFile File, SafetensorsTensorInfo Info) Get(string name) =>
        _tensors.TryGetValue(name, out var t) ? t
            : throw new CheckpointException($"{Directory}: tensor {name} is missing from the checkpoint");

    public (SafetensorsFile File, SafetensorsTensorInfo Info)? Find(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : null;

    public static HfCheckpoint Open(string dir)
    {
        if (!System.IO.Directory.Exists(dir)) throw new CheckpointException($"{dir}: no such folder");
        var config = ReadJson(Path.Combine(dir, "config.json"), required: true)!;
        var cp = new HfCheckpoint(dir, config);
        try
        {
            cp.OpenShards();
            return cp;
        }
        catch
        {
            cp.Dispose();
            throw;
        }
    }

    /// <summary>Parses a JSON file; a missing optional file is null, a malformed one an error naming it.</summary>
    public static JsonDocument? ReadJson(string path, bool required)
    {
        if (!File.Exists(path))
            return required ? throw new CheckpointException($"{path}: missing (a Hugging Face checkpoint folder has one)") : null;
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 64, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new CheckpointException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})");
        }
    }

    private void OpenShards()
    {
        string index = Path.Combine(Directory, "model.safetensors.index.json");
        Dictionary<string, string>? weightMap = null;
        List<string> shards;
        if (File.Exists(index))
        {
            using var doc = ReadJson(index, required: true)!;
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{index}: no weight_map object");
            weightMap = new(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String || p.Value.GetString() is not { Length: > 0 } file
                    || file.Contains('/') || file.Contains('\\') || file is "." or "..")
                    throw new CheckpointException($"{index}: weight_map entry {p.Name} does not name a file in the folder");
                weightMap[p.Name] = file;
            }
            shards = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            foreach (string s in shards)
                if (!File.Exists(Path.Combine(Directory, s)))
                    throw new CheckpointException(
                        $"{Path.Combine(Directory, s)}: missing shard (model.safetensors.index.json puts {weightMap.First(kv => kv.Value == s).Key} there)");
        }
        else
        {
            shards = System.IO.Directory.EnumerateFiles(Directory, "model*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList()!;
            if (shards.Count == 0) throw new CheckpointException($"{Directory}: no model*.safetensors file and no model.safetensors.index.json");
        }

        foreach (string s in shards)
        {
            string path = Path.Combine(Directory, s);
            SafetensorsFile f;
            try { f = SafetensorsFile.Open(path); }
            catch (SafetensorsFormatException e) { throw new CheckpointException(e.Message.Replace(s + ":", path + ":", StringComparison.Ordinal)); }
            _files.Add(f);
            foreach (var t in f.Tensors)
            {
                if (_tensors.TryGetValue(t.Name, out var prev))
                    throw new CheckpointException($"{path}: tensor {t.Name} is also in {Path.GetFileName(prev.File.Path)}");
                if (weightMap is not null && (!weightMap.TryGetValue(t.Name, out string? expected) || expected != s))
                    throw new CheckpointException($"{path}: tensor {t.Name} is not where model.safetensors.index.json puts it ({expected ?? "nowhere"})");
                _tensors[t.Name] = (f, t);
            }
        }
        if (weightMap is not null)
            foreach (var (name, file) in weightMap)
                if (!_tensors.ContainsKey(name))
                    throw new CheckpointException($"{Path.Combine(Directory, file)}: tensor {name} is missing (model.safetensors.index.json puts it there; incomplete download?)");
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        ConfigDocument.Dispose();
    }
}
