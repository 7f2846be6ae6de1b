// Gives memory back once the server goes idle. After a burst the GC keeps what it grew to: large request bodies and
// prompts leave large-object-heap garbage that only a full collection frees, and the GC commits ahead of need. When no
// request has been in flight for a while, one aggressive collection (compacting, decommitting) returns the resident
// memory of an idle server to its working size: measured by the soak run, 190-300 MB after bursts of hostile 1 MB
// bodies without it, within a few MB of the same figure after every burst with it (docs/reliability.md).
using System.Diagnostics;
using Microsoft.Extensions.Hosting;

namespace R1Sharp.Server;

internal sealed class IdleTrimmer(TimeSpan after) : BackgroundService
{
    private int _inFlight;
    private long _lastActivity = Stopwatch.GetTimestamp();
    private volatile bool _dirty;

    /// <summary>Collections made so far.</summary>
    public int Trims { get; private set; }

    public void Begin()
    {
        Interlocked.Increment(ref _inFlight);
        _dirty = true;
    }

    public void End()
    {
        Volatile.Write(ref _lastActivity, Stopwatch.GetTimestamp());
        Interlocked.Decrement(ref _inFlight);
    }

    protected override async Task ExecuteAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(Math.Clamp(after.TotalMilliseconds / 4, 10, 1000)));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                if (!_dirty || Volatile.Read(ref _inFlight) > 0 || Stopwatch.GetElapsedTime(Volatile.Read(ref _lastActivity)) < after) continue;
                _dirty = false;
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                Trims++;
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
