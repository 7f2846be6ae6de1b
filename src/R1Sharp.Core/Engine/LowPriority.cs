// Background work that shares the cores with the forward passes (the copy of a model file into memory) runs at a
// lower scheduling priority, so the passes keep the cores while both want them.
using System.Runtime.InteropServices;

namespace R1Sharp.Engine;

internal static partial class LowPriority
{
    /// <summary>The nice value given: a share of about a tenth of a core's time against a pass's thread (Linux CFS weights 110 : 1024).</summary>
    public const int Nice = 10;

    /// <summary>Lowers the calling thread's priority (Linux; elsewhere nothing changes). Use it on a thread of one's own.</summary>
    public static void ThisThread()
    {
        if (!OperatingSystem.IsLinux()) return;
        // setpriority on a thread id sets that thread's nice value alone
        _ = SetPriority(PrioProcess, GetTid(), Nice);
    }

    private const int PrioProcess = 0;

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();

    [LibraryImport("libc", EntryPoint = "setpriority")]
    private static partial int SetPriority(int which, int who, int prio);
}
