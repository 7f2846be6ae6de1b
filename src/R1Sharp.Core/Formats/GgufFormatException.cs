// The one exception type for a GGUF file that is malformed, truncated or missing something the engine needs.
namespace R1Sharp.Formats;

public sealed class GgufFormatException : Exception
{
    /// <param name="field">The field being read, like "tensor_info[3].n_dims" or "kv[general.alignment].value".</param>
    /// <param name="offset">Byte offset of the field in the file, or -1 when the problem has no single place.</param>
    /// <param name="file">The file the problem is in, where a model has several (the parts of a split model).</param>
    public GgufFormatException(string field, long offset, string message, string? file = null)
        : base((file is null ? "bad GGUF" : $"bad GGUF {file}") + (offset >= 0 ? $" at byte {offset} ({field}): {message}" : $" ({field}): {message}"))
    {
        Field = field;
        Offset = offset;
        Detail = message;
        File = file;
    }

    public string Field { get; }

    public long Offset { get; }

    /// <summary>What is wrong, without the file and place.</summary>
    public string Detail { get; }

    public string? File { get; }

    /// <summary>This problem, said of <paramref name="file"/>.</summary>
    public GgufFormatException In(string file) => new(Field, Offset, Detail, file);
}
