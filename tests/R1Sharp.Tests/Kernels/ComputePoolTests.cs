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
    [InlineData(2)]
    [InlineData(3)]
    public void Run_ShrinkingChunksCoverEveryIndexOnce(int threads)
    {
        using var pool = new ComputePool(threads);
        foreach (int count in new[] { 1, 2, 3, 5, 100, 1001, 151936 })
        {
            var hits = new int[count];
            fixed (int* p = hits) pool.Run(count, &MarkRange, p, chunksPerThread: 8, shrinking: true);
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Cut_EqualChunks()
    {
        var bounds = new int[ComputePool.MaxChunks + 1];
        Assert.Equal(8, ComputePool.Cut(100, 8, shrinking: false, bounds));
        Assert.Equal(new[] { 0, 12, 25, 37, 50, 62, 75, 87, 100 }, bounds[..9]);
        Assert.Equal(3, ComputePool.Cut(3, 8, shrinking: false, bounds));
        Assert.Equal(new[] { 0, 1, 2, 3 }, bounds[..4]);
        Assert.Equal(0, ComputePool.Cut(0, 8, shrinking: true, bounds));
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(1024)]
    public void Cut_ShrinkingChunksCoverTheRangeOnce(int target)
    {
        var bounds = new int[ComputePool.MaxChunks + 1];
        foreach (int count in new[] { 1, 2, 7, 8, 9, 17, 100, 1536, 8960, 151936, 1 << 24 })
        {
            int chunks = ComputePool.Cut(count, target, shrinking: true, bounds);
            Assert.InRange(chunks, 1, ComputePool.MaxChunks);
            Assert.Equal(0, bounds[0]);
            Assert.Equal(count, bounds[chunks]);
            int first = bounds[1] - bounds[0];
            Assert.True(first <= (count + target - 1) / target, $"count {count}: first chunk {first} rows");
            for (int i = 0; i < chunks; i++)
            {
                int size = bounds[i + 1] - bounds[i];
                Assert.True(size >= 1, $"count {count}: chunk {i} is empty");
                Assert.True(size <= first, $"count {count}: chunk {i} ({size}) is longer than the first ({first})");
            }
            // the last chunks are about half the equal split: the threads finish close together
            if (count >= 2 * target)
                Assert.True(bounds[chunks] - bounds[chunks - 1] <= Math.Max(1, count / (2 * target)), $"count {count}: last chunk too long");
        }
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
