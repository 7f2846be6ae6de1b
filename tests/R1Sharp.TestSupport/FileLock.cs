// A lock that holds across processes: test assemblies run in parallel, and the first to need a cached step takes
// it while the others wait here. The kernel drops the lock when its holder dies, so a killed run never wedges the
// next one.
namespace R1Sharp.TestSupport;

public static class FileLock
{
    /// <summary>Waits (up to <paramref name="timeout"/>) for the exclusive lock on <paramref name="path"/>; dispose to release.</summary>
    public static IDisposable Acquire(string path, TimeSpan timeout)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            // FileShare.None is an exclusive flock on Unix and a sharing-mode lock on Windows
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(200); }
            catch (IOException e) { throw new TimeoutException($"waited {timeout} for the lock {path} (another test run holds it)", e); }
        }
    }
}
