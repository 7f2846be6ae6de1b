// A safetensors file opened read-only and memory-mapped: the header is parsed and validated up front
// (SafetensorsHeader); tensor data stays in the mapping and is handed out as pointers, never copied.
using System.IO.MemoryMappedFiles;
using R1Sharp.Tensors;

namespace R1Sharp.Formats;

public sealed unsafe class SafetensorsFile : IDisposable
{
    private MemoryMappedFile? _mapping;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;

    private SafetensorsFile(string path, long length, SafetensorsHeader header, MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* basePtr)
    {
        Path = path;
        FileSize = length;
        Header = header;
        _mapping = mapping;
        _view = view;
        _base = basePtr;
    }

    public string Path { get; }
    public long FileSize { get; }
    public SafetensorsHeader Header { get; }
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => Header.Tensors;

    /// <summary>Maps <paramref name="path"/> and parses its header; throws <see cref="SafetensorsFormatException"/> if it is not a valid file.</summary>
    public static SafetensorsFile Open(string path)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        long length = stream.Length;
        string name = System.IO.Path.GetFileName(path);
        if (length < SafetensorsHeader.LengthBytes)
        {
            stream.Dispose();
            throw new SafetensorsFormatException($"{name}: {length} bytes is too short for a safetensors file (truncated?)");
        }
        MemoryMappedFile? mapping = null;
        MemoryMappedViewAccessor? view = null;
        bool acquired = false;
        try
        {
            mapping = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            acquired = true;
            p += view.PointerOffset;
            long n = SafetensorsHeader.ReadLength(new ReadOnlySpan<byte>(p, SafetensorsHeader.LengthBytes), length, name);
            var header = SafetensorsHeader.Parse(new ReadOnlySpan<byte>(p + SafetensorsHeader.LengthBytes, (int)n), length, name);
            return new SafetensorsFile(path, length, header, mapping, view, p);
        }
        catch
        {
            if (acquired) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            if (mapping is null) stream.Dispose();
            mapping?.Dispose();
            throw;
        }
    }

    /// <summary>The first byte of <paramref name="t"/>'s data in the mapping.</summary>
    public byte* TensorPointer(SafetensorsTensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_base is null, this);
        return _base + Header.DataOffset + t.Begin;
    }

    /// <summary>Drops <paramref name="t"/>'s pages from this process once it has been read (they stay in the page
    /// cache), so converting a model many times the size of memory keeps the resident set to a few tensors.</summary>
    public void Release(SafetensorsTensorInfo t) => Release(t.Begin, t.End);

    /// <summary>As <see cref="Release(SafetensorsTensorInfo)"/> for the whole pages of the data bytes [begin, end).</summary>
    public void Release(long begin, long end)
    {
        if (_base is null || end <= begin) return;
        const long page = 4096;
        long start = Header.DataOffset + begin;
        end += Header.DataOffset;
        long a = (start + page - 1) / page * page, b = end / page * page;
        if (b > a) HugePages.Release(_base + a, b - a);
    }

    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _view = null;
        }
        _mapping?.Dispose();
        _mapping = null;
        _base = null;
    }
}
