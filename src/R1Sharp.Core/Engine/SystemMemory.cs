// Memory the system can give without swapping, which decides whether a model file is copied into memory or read from
// its mapping. Each operating system reports it its own way; where none answers, the portable estimate is used.
//  - Linux: MemAvailable of /proc/meminfo (the kernel's own estimate, page cache that can be dropped included).
//  - Windows: GlobalMemoryStatusEx's ullAvailPhys.
//  - elsewhere (macOS, the BSDs): the physical memory .NET sees (GCMemoryInfo.TotalAvailableMemoryBytes, a container's
//    limit where there is one) less this process's working set: an upper bound, since other processes are not counted.
using System.Runtime.InteropServices;

namespace R1Sharp.Engine;

internal static partial class SystemMemory
{
    /// <summary>Where the figure comes from.</summary>
    internal enum Source { Linux, Windows, Portable }

    public static Source Current { get; } =
        OperatingSystem.IsLinux() ? Source.Linux : OperatingSystem.IsWindows() ? Source.Windows : Source.Portable;

    /// <summary>Bytes available, or null when not even the portable estimate is known.</summary>
    public static long? Available() => Available(Current);

    /// <summary>Bytes available as <paramref name="source"/> reports them, falling back to the portable estimate.</summary>
    internal static long? Available(Source source) => source switch
    {
        Source.Linux => FromMeminfo("/proc/meminfo") ?? Portable(),
        Source.Windows => FromWindows() ?? Portable(),
        _ => Portable(),
    };

    /// <summary>MemAvailable of a meminfo file, in bytes; null if the file or the line is missing or unreadable.</summary>
    internal static long? FromMeminfo(string path)
    {
        const string Key = "MemAvailable:";
        try
        {
            foreach (string line in File.ReadLines(path))
            {
                if (!line.StartsWith(Key, StringComparison.Ordinal)) continue;
                string[] parts = line[Key.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return parts.Length > 0 && long.TryParse(parts[0], out long kb) ? kb * 1024 : null;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return null;
    }

    /// <summary>The physical memory .NET sees less this process's working set; null if the runtime reports none.</summary>
    internal static long? Portable()
    {
        long total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return total > 0 ? Math.Max(0, total - Environment.WorkingSet) : null;
    }

    private static long? FromWindows()
    {
        if (!OperatingSystem.IsWindows()) return null;
        var status = new MemoryStatusEx { Length = (uint)Marshal.SizeOf<MemoryStatusEx>() };
        return GlobalMemoryStatusEx(ref status) ? (long)Math.Min(status.AvailPhys, long.MaxValue) : null;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MemoryStatusEx
    {
        public uint Length, MemoryLoad;
        public ulong TotalPhys, AvailPhys, TotalPageFile, AvailPageFile, TotalVirtual, AvailVirtual, AvailExtendedVirtual;
    }

    [LibraryImport("kernel32.dll", EntryPoint = "GlobalMemoryStatusEx")]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool GlobalMemoryStatusEx(ref MemoryStatusEx status);
}
