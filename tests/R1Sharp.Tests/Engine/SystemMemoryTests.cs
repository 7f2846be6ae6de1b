// The memory figure that decides between copying a model into memory and reading its mapping, on each operating
// system's path: Linux's /proc/meminfo, and the portable estimate macOS runs on (forced here). Windows' own call cannot
// run on this machine; asked for here, it falls back to the portable estimate, which is what these tests hold.
using R1Sharp.Engine;

namespace R1Sharp.Tests.Engine;

public sealed class SystemMemoryTests
{
    private static long? MemTotal()
    {
        foreach (string line in File.ReadLines("/proc/meminfo"))
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return null;
    }

    [Fact]
    public void Meminfo_ParsesMemAvailable_AndIsNullWithoutIt()
    {
        string dir = Directory.CreateTempSubdirectory("r1sharp-meminfo").FullName;
        try
        {
            string path = Path.Combine(dir, "meminfo");
            File.WriteAllLines(path, ["MemTotal:       24576000 kB", "MemFree:         1000000 kB", "MemAvailable:   12345678 kB"]);
            Assert.Equal(12345678L * 1024, SystemMemory.FromMeminfo(path));
            File.WriteAllLines(path, ["MemTotal:       24576000 kB"]); // kernels before 3.14 have no MemAvailable
            Assert.Null(SystemMemory.FromMeminfo(path));
            Assert.Null(SystemMemory.FromMeminfo(Path.Combine(dir, "missing")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void PortableEstimate_IsPositiveAndWithinThePhysicalMemory()
    {
        long? portable = SystemMemory.Portable();
        Assert.NotNull(portable);
        Assert.InRange(portable!.Value, 1, long.MaxValue);
        if (OperatingSystem.IsLinux() && MemTotal() is long total)
        {
            // the GC sees the machine's memory or a container's smaller limit
            Assert.True(portable <= total, $"portable {portable} > MemTotal {total}");
        }
    }

    [Fact]
    public void EverySource_GivesAFigure()
    {
        foreach (var source in Enum.GetValues<SystemMemory.Source>())
        {
            long? bytes = SystemMemory.Available(source);
            Assert.True(bytes is > 0, $"{source}: {bytes}");
        }
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(SystemMemory.Source.Linux, SystemMemory.Current);
            Assert.Equal(SystemMemory.FromMeminfo("/proc/meminfo"), SystemMemory.Available(SystemMemory.Source.Linux));
            Assert.Equal(SystemMemory.Portable() is null, SystemMemory.Available(SystemMemory.Source.Windows) is null);
        }
    }
}
