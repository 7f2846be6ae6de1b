using R1Sharp.Kernels;

namespace R1Sharp.Tests.Kernels;

public sealed unsafe class ComputePoolTests
{
    private static void MarkRange(int start, int end, void* ctx)
    {
        int* hits = (int*)ctx;
        for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Run_CoversEveryIndexOnce(int threads)
    {
        using var pool = new ComputePool(threads);
        Assert.Equal(threads, pool.Threads);
        foreach (int count in new[] { 0, 1, 2, 3, 5, 100, 1001 })
        {
            var hits = new int[Math.Max(count, 1)];
            fixed (int* p = hits) pool.Run(count, &MarkRange, p);
            for (int i = 0; i < count; i++) Assert.Equal(1, hits[i]);
        }
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 16)]
    [InlineData(3, 16)]
    [InlineData(4, 64)]
    public void Run_StepsCoverEveryIndexOnce(int threads, int stepsPerThread)
    {
        using var pool = new ComputePool(threads);
        foreach (int count in new[] { 2, 3, 5, 100, 1001, 151936 })
        {
            var hits = new int[count];
            fixed (int* p = hits) pool.Run(count, &MarkRange, p, stepsPerThread);
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    private static int[]? s_runner;

    private static void SlowFront(int start, int end, void* ctx)
    {
        // the caller's share (the front half) is slow: the worker finishes its own and takes steps from the caller's back
        if (start < 500) Thread.Sleep(1);
        for (int i = start; i < end; i++) s_runner![i] = Environment.CurrentManagedThreadId;
        MarkRange(start, end, ctx);
    }

    [Fact]
    public void Run_AThreadThatRunsOutTakesOverTheRest()
    {
        using var pool = new ComputePool(2);
        var hits = new int[1000];
        s_runner = new int[1000];
        fixed (int* p = hits) pool.Run(1000, &SlowFront, p, stepsPerThread: 50);
        Assert.All(hits, h => Assert.Equal(1, h));
        int caller = Environment.CurrentManagedThreadId;
        Assert.Equal(caller, s_runner[0]); // the caller starts its own share at the front
        Assert.Contains(s_runner[..500], id => id != caller); // and the worker took some of it from the back
    }

    [Fact]
    public void Run_MoreRowsThanOneJobHolds()
    {
        using var pool = new ComputePool(2);
        int count = (1 << 23) * 2 + 12345;
        var hits = new byte[count];
        fixed (byte* p = hits) pool.Run(count, &MarkBytes, p, 2);
        Assert.DoesNotContain(hits, h => h != 1);
    }

    private static void MarkBytes(int start, int end, void* ctx)
    {
        byte* hits = (byte*)ctx;
        for (int i = start; i < end; i++) hits[i]++;
    }

    [Fact]
    public void Run_ManyShortJobsInARow()
    {
        using var pool = new ComputePool(2);
        var hits = new int[64];
        fixed (int* p = hits)
        {
            for (int rep = 0; rep < 2000; rep++) pool.Run(64, &MarkRange, p);
        }
        Assert.All(hits, h => Assert.Equal(2000, h));
    }

    [Fact]
    public void Run_WakesSleepingWorkers()
    {
        using var pool = new ComputePool(2);
        var hits = new int[8];
        fixed (int* p = hits) pool.Run(8, &MarkRange, p);
        Thread.Sleep(20); // past the spin: the worker is now blocked
        fixed (int* p = hits) pool.Run(8, &MarkRange, p);
        Assert.All(hits, h => Assert.Equal(2, h));
    }

    [Fact]
    public void ActionOverload_CoversEveryIndexAndPropagatesFailures()
    {
        using var pool = new ComputePool(2);
        var hits = new int[10];
        pool.Run(10, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
        Assert.All(hits, h => Assert.Equal(1, h));
        Assert.ThrowsAny<Exception>(() => pool.Run(10, (s, e) => { if (s > 0) throw new InvalidOperationException("boom"); }));
        pool.Run(10, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); }); // still usable
        Assert.All(hits, h => Assert.Equal(2, h));
    }

    [Fact]
    public void RunAfterDisposeThrows()
    {
        var pool = new ComputePool(2);
        pool.Dispose();
        pool.Dispose(); // idempotent
        Assert.Throws<ObjectDisposedException>(() => pool.Run(4, (s, e) => { }));
    }

    [Fact]
    public void RejectsZeroThreads() => Assert.Throws<ArgumentOutOfRangeException>(() => new ComputePool(0));
}
