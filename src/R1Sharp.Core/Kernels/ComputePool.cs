// Persistent worker threads for the forward pass. A Run call gives each thread one contiguous share of [0, count),
// which it works through front to back a step at a time (one long stream through the weights, as the hardware
// prefetcher likes); a thread that runs out takes steps from the back of the share with the most left. So the threads
// finish within about a step of each other, and a thread that another process delays (or a worker that has not woken
// yet) costs little: its share is taken over. Workers spin briefly after each job (decode issues jobs microseconds
// apart), then sleep.
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
    /// <summary>
    /// Thread t's share of the current job at index t · SpanStride (a cache line each): the job's number (low 16 bits) in
    /// bits 48..63, the next row it has not taken in bits 24..47 and the end of the share in bits 0..23. The owner takes
    /// steps from the front and others from the back, each with one CAS that fails once the job has changed.
    /// </summary>
    private readonly long[] _spans;
    private const int SpanStride = 8;
    /// <summary>Jobs of at most this many rows fit a span; a larger Run is done as several.</summary>
    private const int MaxSpanRows = 1 << 23;
    private int _base;
    private int _step;
    /// <summary>Rows of the current job finished (by anyone).</summary>
    private int _doneRows;
    private int _job;
    /// <summary>The number (low 16 bits) of the job the shares belong to.</summary>
    private int _current;
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
        _spans = new long[threads * SpanStride];
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int index = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"R1Sharp compute {index}" };
            _workers[i].Start();
        }
    }

    public int Threads { get; }

    /// <summary>Steps per thread's share: the threads finish within about one step of each other.</summary>
    public const int StepsPerThread = 16;

    /// <summary>
    /// Calls <paramref name="work"/>(start, end, ctx) on disjoint contiguous ranges covering [0, count), on all threads
    /// (the caller included), and returns when all are done. Not reentrant: one Run at a time per pool.
    /// <paramref name="stepsPerThread"/> sets how finely a thread's share is taken (finer: closer finishes).
    /// </summary>
    public void Run(int count, delegate*<int, int, void*, void> work, void* ctx, int stepsPerThread = StepsPerThread)
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
            _failure = null;
            for (int start = 0; start < count; start += MaxSpanRows)
            {
                RunSpans(start, Math.Min(MaxSpanRows, count - start), stepsPerThread);
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

    /// <summary>Rows [start, start + count) as one job: equal shares, taken in steps.</summary>
    private void RunSpans(int start, int count, int stepsPerThread)
    {
        _base = start;
        _step = Math.Max(1, count / (Threads * Math.Max(1, stepsPerThread)));
        int job = ++_job & 0xFFFF;
        for (int t = 0; t < Threads; t++)
        {
            _spans[t * SpanStride] = Span(job, (int)((long)count * t / Threads), (int)((long)count * (t + 1) / Threads));
        }
        Volatile.Write(ref _doneRows, 0);
        Interlocked.Exchange(ref _current, job); // full fence: the job's fields and shares are visible before a worker looks
        Interlocked.Increment(ref _generation);
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_sleepLock) Monitor.PulseAll(_sleepLock);
        }

        Work(0, job);
        // only steps already taken by a worker can still be running
        var spin = new SpinWait();
        while (Volatile.Read(ref _doneRows) < count)
        {
            spin.SpinOnce(sleep1Threshold: -1);
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

    private static long Span(int job, int next, int end) => (long)job << 48 | (long)next << 24 | (uint)end;

    private static (int Job, int Next, int End) Unpack(long span) =>
        ((int)((ulong)span >> 48), (int)(span >> 24) & 0xFFFFFF, (int)span & 0xFFFFFF);

    /// <summary>Thread <paramref name="self"/>'s part of job <paramref name="job"/>: its own share front to back, then steps from the back of others'.</summary>
    private void Work(int self, int job)
    {
        int step = _step;
        ref long own = ref _spans[self * SpanStride];
        while (true)
        {
            long s = Volatile.Read(ref own);
            var (j, next, end) = Unpack(s);
            if (j != job || next >= end) break;
            int to = Math.Min(end, next + step);
            if (Interlocked.CompareExchange(ref own, Span(j, to, end), s) == s) Execute(next, to);
        }
        while (true)
        {
            // the share with the most left, if any
            int victim = -1, most = 0;
            for (int t = 0; t < Threads; t++)
            {
                var (j, next, end) = Unpack(Volatile.Read(ref _spans[t * SpanStride]));
                if (t != self && j == job && end - next > most) (victim, most) = (t, end - next);
            }
            if (victim < 0) return;
            ref long other = ref _spans[victim * SpanStride];
            long s = Volatile.Read(ref other);
            var (vj, vnext, vend) = Unpack(s);
            if (vj != job || vnext >= vend) continue;
            int from = Math.Max(vnext, vend - step);
            if (Interlocked.CompareExchange(ref other, Span(vj, vnext, from), s) == s) Execute(from, vend);
        }
    }

    private void Execute(int start, int end)
    {
        try
        {
            _work(_base + start, _base + end, _ctx);
        }
        catch (Exception e)
        {
            _failure ??= e;
        }
        Interlocked.Add(ref _doneRows, end - start);
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
            Work(index, Volatile.Read(ref _current));
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
