// Persistent worker threads for the forward pass. A Run call splits [0, count) into one contiguous range per thread,
// the caller taking the first; workers spin briefly after each job (decode issues jobs microseconds apart), then sleep.
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace R1Sharp.Kernels;

public sealed unsafe class ComputePool : IDisposable
{
    /// <summary>How long an idle worker spins before it blocks.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();
    private delegate*<int, int, void*, void> _work;
    private void* _ctx;
    private int _count;
    private int _generation;
    private int _pending;
    private int _sleepers;
    private int _running;
    private volatile bool _disposed;
    private Exception? _failure;

    // Scratch owned by the pool (activation buffers of MatMul): grown on demand, never shrunk, 64-byte aligned.
    private byte* _scratch;
    private nuint _scratchBytes;

    public ComputePool(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int index = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"R1Sharp compute {index}" };
            _workers[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>
    /// Calls <paramref name="work"/>(start, end, ctx) on disjoint ranges covering [0, count), one per thread (the caller
    /// included; empty ranges are skipped), and returns when all are done. Not reentrant: one Run at a time per pool.
    /// </summary>
    public void Run(int count, delegate*<int, int, void*, void> work, void* ctx)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count == 0) return;
        if (Threads == 1 || count == 1)
        {
            work(0, count, ctx);
            return;
        }
        if (Interlocked.Exchange(ref _running, 1) != 0)
        {
            throw new InvalidOperationException("ComputePool.Run is not reentrant");
        }
        try
        {
            _work = work;
            _ctx = ctx;
            _count = count;
            _failure = null;
            Volatile.Write(ref _pending, _workers.Length);
            Interlocked.Increment(ref _generation); // full fence: publishes the job before _sleepers is read
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleepLock) Monitor.PulseAll(_sleepLock);
            }

            Exception? own = null;
            var (start, end) = Range(0, count, Threads);
            try
            {
                if (start < end) work(start, end, ctx);
            }
            catch (Exception ex)
            {
                own = ex; // the workers must finish before the job's context goes away
            }

            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) != 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            if (own != null) ExceptionDispatchInfo.Throw(own);
            if (_failure is { } e)
            {
                throw new AggregateException("a ComputePool worker failed", e);
            }
        }
        finally
        {
            Volatile.Write(ref _running, 0);
        }
    }

    /// <summary>Convenience overload for paths that are not hot (allocates a GC handle per call).</summary>
    public void Run(int count, Action<int, int> work)
    {
        var handle = GCHandle.Alloc(work);
        try
        {
            Run(count, &RunAction, (void*)GCHandle.ToIntPtr(handle));
        }
        finally
        {
            handle.Free();
        }
    }

    private static void RunAction(int start, int end, void* ctx) =>
        ((Action<int, int>)GCHandle.FromIntPtr((nint)ctx).Target!)(start, end);

    /// <summary>The range of thread <paramref name="index"/> when [0, count) is split over <paramref name="threads"/>.</summary>
    internal static (int Start, int End) Range(int index, int count, int threads) =>
        ((int)((long)count * index / threads), (int)((long)count * (index + 1) / threads));

    /// <summary>Pool-owned scratch of at least <paramref name="bytes"/> bytes, 64-byte aligned; valid until the next call.</summary>
    internal byte* Scratch(long bytes)
    {
        if ((nuint)bytes > _scratchBytes)
        {
            NativeMemory.AlignedFree(_scratch);
            _scratchBytes = (nuint)Math.Max(bytes, (long)_scratchBytes * 3 / 2);
            _scratch = (byte*)NativeMemory.AlignedAlloc(_scratchBytes, 64);
        }
        return _scratch;
    }

    private void WorkerLoop(int index)
    {
        int seen = 0;
        while (true)
        {
            int gen = Volatile.Read(ref _generation);
            if (gen == seen && !_disposed)
            {
                long until = Stopwatch.GetTimestamp() + SpinTicks;
                while ((gen = Volatile.Read(ref _generation)) == seen && !_disposed && Stopwatch.GetTimestamp() < until)
                {
                    Thread.SpinWait(8);
                }
                if (gen == seen && !_disposed)
                {
                    lock (_sleepLock)
                    {
                        // a full fence between announcing the sleep and re-reading _generation: a plain increment may be
                        // reordered after that read (x86 store-load), and Run, seeing no sleeper, would never pulse
                        Interlocked.Increment(ref _sleepers);
                        while ((gen = Volatile.Read(ref _generation)) == seen && !_disposed)
                        {
                            Monitor.Wait(_sleepLock);
                        }
                        Interlocked.Decrement(ref _sleepers);
                    }
                }
            }
            if (_disposed) return;
            seen = gen;

            var (start, end) = Range(index, _count, Threads);
            try
            {
                if (start < end) _work(start, end, _ctx);
            }
            catch (Exception e)
            {
                _failure = e;
            }
            Interlocked.Decrement(ref _pending);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_sleepLock) Monitor.PulseAll(_sleepLock);
        foreach (var t in _workers) t.Join();
        NativeMemory.AlignedFree(_scratch);
        _scratch = null;
        _scratchBytes = 0;
    }
}
