// Crash-safe, resumable training state: every N steps the weights, the AdamW moments and step, and the step the run
// has reached (which is also its data position and its random state: problems and rollouts are drawn from seeds
// derived from the step, so nothing else needs saving) go into DIR/step-NNNNNNNN.ckpt. Each is written to a temp
// file, flushed to the disk and renamed, and ends with a SHA-256 of its content, so a kill at any moment leaves
// either the complete file or no file of that name; resume takes the newest file that reads back whole.
using System.Security.Cryptography;
using System.Text;

namespace R1Sharp.Training;

public static class TrainingCheckpoint
{
    private const string Magic = "R1CK";
    private const int Version = 1;
    private const string Extension = ".ckpt";
    /// <summary>How many complete checkpoints a run keeps (the newest ones).</summary>
    public const int Keep = 2;

    /// <summary>The checkpoint folder a run writing <paramref name="outPath"/> uses by default: OUT.ckpt beside it.</summary>
    public static string DefaultDir(string outPath) => Path.GetFullPath(outPath) + ".ckpt";

    /// <summary>
    /// Writes the state after <paramref name="step"/> completed steps of the run described by <paramref name="run"/>
    /// (its kind and options: a resume must describe the same run), then removes all but the newest <see cref="Keep"/>.
    /// </summary>
    public static string Write(string dir, string run, int step, TrainModel model, AdamW adam)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"step-{step:D8}{Extension}");
        string tmp = path + $".{Environment.ProcessId}.tmp";
        var body = new MemoryStream();
        using (var w = new BinaryWriter(body, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Encoding.ASCII.GetBytes(Magic));
            w.Write(Version);
            w.Write(run);
            w.Write(step);
            WriteFloats(w, model.Weights);
            adam.Save(w);
        }
        var bytes = body.GetBuffer().AsSpan(0, (int)body.Length);
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            fs.Write(bytes);
            fs.Write(SHA256.HashData(bytes));
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        foreach (var old in List(dir).Skip(Keep)) File.Delete(old.Path);
        return path;
    }

    /// <summary>
    /// Loads the newest complete checkpoint in <paramref name="dir"/> into <paramref name="model"/> and
    /// <paramref name="adam"/> and returns its step; files that do not read back whole (a torn write from before
    /// the rename was atomic, a damaged disk) are skipped and reported on <paramref name="log"/>. Throws
    /// InvalidDataException when none is usable or the newest usable one belongs to another run.
    /// </summary>
    public static int Resume(string dir, string run, TrainModel model, AdamW adam, TextWriter log)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"checkpoint folder not found: {dir}");
        foreach (var (path, _) in List(dir))
        {
            byte[] bytes = File.ReadAllBytes(path);
            string? why = Verify(bytes);
            if (why is not null)
            {
                log.WriteLine($"resume: skipping {Path.GetFileName(path)}: {why}");
                continue;
            }
            using var r = new BinaryReader(new MemoryStream(bytes, 0, bytes.Length - SHA256.HashSizeInBytes), Encoding.UTF8);
            r.ReadBytes(Magic.Length);
            if (r.ReadInt32() != Version) throw new InvalidDataException($"{path}: checkpoint version is not {Version}");
            string saved = r.ReadString();
            if (saved != run)
                throw new InvalidDataException($"{path} is from another run ({saved}); this one is ({run}): resume with the same options");
            int step = r.ReadInt32();
            ReadFloats(r, model.Weights, path);
            adam.Load(r, path);
            log.WriteLine($"resume: step {step} from {path}");
            return step;
        }
        throw new InvalidDataException($"no complete checkpoint in {dir}");
    }

    /// <summary>The checkpoints in <paramref name="dir"/>, newest first.</summary>
    public static List<(string Path, int Step)> List(string dir) =>
        Directory.EnumerateFiles(dir, "step-*" + Extension)
            .Select(p => (Path: p, Name: Path.GetFileNameWithoutExtension(p)))
            .Select(x => (x.Path, Step: int.TryParse(x.Name.AsSpan(5), out int s) ? s : -1))
            .Where(x => x.Step >= 0).OrderByDescending(x => x.Step).ToList();

    /// <summary>Null when the bytes are a whole checkpoint (magic and matching SHA-256), else what is wrong.</summary>
    public static string? Verify(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < Magic.Length + SHA256.HashSizeInBytes || !bytes[..Magic.Length].SequenceEqual(Encoding.ASCII.GetBytes(Magic)))
            return "not a checkpoint (too short or no R1CK magic)";
        int body = bytes.Length - SHA256.HashSizeInBytes;
        return SHA256.HashData(bytes[..body]).AsSpan().SequenceEqual(bytes[body..]) ? null : "its SHA-256 does not match (a torn or damaged file)";
    }

    internal static void WriteFloats(BinaryWriter w, float[] values)
    {
        w.Write(values.Length);
        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    internal static void ReadFloats(BinaryReader r, float[] into, string path)
    {
        int n = r.ReadInt32();
        if (n != into.Length) throw new InvalidDataException($"{path}: {n} values where the model has {into.Length}");
        var span = System.Runtime.InteropServices.MemoryMarshal.AsBytes(into.AsSpan());
        if (r.Read(span) != span.Length) throw new InvalidDataException($"{path}: cut short");
    }
}
