// The 2 MiB-aligned buffers on both paths: Linux's (madvise: huge pages advised, Release drops pages) and the one macOS
// and Windows take (no advice; Release leaves the pages), forced here by passing madvise: false.
using R1Sharp.Tensors;

namespace R1Sharp.Tests.Engine;

public sealed unsafe class HugePagesTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Alloc_IsAlignedAndWritable_ReleaseDropsPagesOnlyWithMadvise(bool madvise)
    {
        if (madvise && !OperatingSystem.IsLinux())
        {
            Console.WriteLine("HugePagesTests: madvise path skipped, not Linux");
            return;
        }
        const long Huge = 2 << 20;
        byte* p = HugePages.Alloc(Huge + 1, madvise);
        try
        {
            Assert.Equal(0, (long)p % Huge);
            new Span<byte>(p, (int)Huge).Fill(0x5A);
            new Span<byte>(p + Huge, (int)Huge).Fill(0xA5); // the allocation is rounded up to whole huge pages
            HugePages.Release(p, Huge, madvise);
            // MADV_DONTNEED on private anonymous memory: the next read finds zero-filled pages; without it nothing changes
            byte expected = madvise ? (byte)0 : (byte)0x5A;
            Assert.Equal(expected, p[0]);
            Assert.Equal(expected, p[Huge - 1]);
            Assert.Equal(0xA5, p[Huge]);
        }
        finally
        {
            HugePages.Free(p);
        }
    }
}
