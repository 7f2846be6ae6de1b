// Persistent worker threads for the forward pass. A Run call splits [0, count) into a few contiguous chunks per thread
// that the caller and the workers claim in turn; the caller waits only for chunks that were claimed, never for a worker
// that has not woken up, so a thread that another process delays (or a machine with fewer free cores than threads)
// costs little. Workers spin briefly after each job (decode issues jobs microseconds apart), then sleep.
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace R1Sharp.Kernels;

/// <summary>
/// Worker threads for one forward pass at a time: <c>Run</c> is not reentrant, and MatMul keeps its converted
/// activations in the pool's scratch.
/// </summary>
public sealed unsafe class ComputePool : IDisposable
{
    /// <summary>How long an idle worker spins before it blocks.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();
    private delegate*<int, int, void*, void> _work;
    private void* _ctx;
    private int _chunks;
    /// <summary>Chunk i of the current job is [_bounds[i], _bounds[i + 1]).</summary>
    private readonly int[] _bounds = new int[MaxChunks + 1];
    /// <summary>The job's number in the high 32 bits, the next unclaimed chunk in the low 32: a claim is one CAS that
    /// fails once the job has changed, so a late worker can never run a chunk of the wrong job.</summary>
    private long _claim;
    /// <summary>Chunks of the current job finished (by anyone).</summary>
    private int _done;
    private int _job;
    private int _generation;
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
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"R1Sharp compute {index}" };
            _workers[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>Chunks per thread: enough to even out a delayed thread, few enough to keep each range a long stream.</summary>
    public const int ChunksPerThread = 4;

    /// <summary>
    /// Calls <paramref name="work"/>(start, end, ctx) on disjoint contiguous ranges covering [0, count), on all threads
    /// (the caller included), and returns when all are done. Not reentrant: one Run at a time per pool.
    /// <paramref name="chunksPerThread"/> sets how finely the range is cut (finer: less waiting on the last chunk);
    /// <paramref name="shrinking"/> cuts it into chunks that shrink toward the end (see <see cref="Cut"/>).
    /// </summary>
    public void Run(int count, delegate*<int, int, void*, void> work, void* ctx, int chunksPerThread = ChunksPerThread, bool shrinking = false)
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
            _chunks = Cut(count, Threads * Math.Max(1, chunksPerThread), shrinking, _bounds);
            _failure = null;
            Volatile.Write(ref _done, 0);
            int job = ++_job;
            Interlocked.Exchange(ref _claim, (long)job << 32); // full fence: the job's fields are visible before any claim
            Interlocked.Increment(ref _generation);
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleepLock) Monitor.PulseAll(_sleepLock);
            }

            Drain(job);
            // only chunks already claimed by a worker can still be running
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < _chunks)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            if (_failure is { } e)
            {
                throw e is OperationCanceledException or ArgumentException or InvalidOperationException
                    ? e : new AggregateException("a ComputePool chunk failed", e);
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

    /// <summary>The most chunks <see cref="Cut"/> makes (it is asked for at most 1024).</summary>
    internal const int MaxChunks = 2048;

    /// <summary>
    /// Cuts [0, count) into about <paramref name="target"/> chunks and writes their bounds (chunk i is
    /// [bounds[i], bounds[i + 1])); returns how many. Equal chunks, or with <paramref name="shrinking"/> chunks that
    /// each take 1 / target of what is left while that is at least half of count / target, then what remains in chunks
    /// of that half size: the thread that claims the last chunk keeps the others waiting half as long, at the price of
    /// about twice the chunks. Arithmetic-bound work gains (a batch's products: `r1sharp bench -p 8` on Q8_0, the
    /// threads' busy share 91–93% → 94%, prefill 2.5% faster over four pairs); memory-bound decode loses to the shorter
    /// streams what it gains (Q4_K_M decode: busy share 93–95% → 96–97%, decode no faster), so it keeps equal chunks.
    /// </summary>
    internal static int Cut(int count, int target, bool shrinking, Span<int> bounds)
    {
        target = Math.Clamp(target, 1, 1024);
        bounds[0] = 0;
        if (count <= target || !shrinking)
        {
            int chunks = Math.Min(count, target);
            if (chunks == 0) return 0;
            for (int i = 0; i <= chunks; i++) bounds[i] = (int)((long)count * i / chunks);
            return chunks;
        }
        int min = Math.Max(1, count / (2 * target));
        double left = count, keep = 1.0 - 1.0 / target;
        int n = 0, start = 0;
        // left - left * keep >= min guarantees floor(left) - floor(left * keep) >= 1: no empty chunk
        while (left * (1 - keep) >= min)
        {
            left *= keep;
            start = count - (int)left;
            bounds[++n] = start;
        }
        for (; start < count; )
        {
            start = Math.Min(count, start + min);
            bounds[++n] = start;
        }
        return n;
    }

    /// <summary>Claims and runs chunks of job <paramref name="job"/> until none are left (or the job has changed).</summary>
    private void Drain(int job)
    {
        while (true)
        {
            long c = Volatile.Read(ref _claim);
            int chunk = (int)(c & 0xFFFFFFFF);
            if ((int)(c >> 32) != job || chunk >= _chunks) return;
            if (Interlocked.CompareExchange(ref _claim, c + 1, c) != c) continue;
            int start = _bounds[chunk], end = _bounds[chunk + 1];
            try
            {
                _work(start, end, _ctx);
            }
            catch (Exception e)
            {
                _failure ??= e;
            }
            Interlocked.Increment(ref _done);
        }
    }

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

    private void WorkerLoop()
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
            Drain((int)(Volatile.Read(ref _claim) >> 32));
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
