// The per-machine test cache ($R1SHARP_CACHE, default ~/.cache/r1sharp) and the repository's own paths, as every
// test assembly finds them.
namespace R1Sharp.TestSupport;

public static class TestCache
{
    /// <summary>The cache folder shared by all test assemblies and runs; created on first use.</summary>
    public static string Root
    {
        get
        {
            string root = Environment.GetEnvironmentVariable("R1SHARP_CACHE") is { Length: > 0 } env ? env
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "r1sharp");
            Directory.CreateDirectory(root);
            return root;
        }
    }
}

public static class RepoPaths
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "R1Sharp.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException($"R1Sharp.slnx not found above {AppContext.BaseDirectory}.");
    });

    /// <summary>The repository's root folder (the one holding R1Sharp.slnx).</summary>
    public static string Root => s_root.Value;

    /// <summary>A path inside the repository, from '/'-separated parts relative to its root.</summary>
    public static string Get(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));
}
