// The one exception type for a GGUF file that is malformed, truncated or missing something the engine needs.
namespace R1Sharp.Formats;

public sealed class GgufFormatException : Exception
{
    /// <param name="field">The field being read, like "tensor_info[3].n_dims" or "kv[general.alignment].value".</param>
    /// <param name="offset">Byte offset of the field in the file, or -1 when the problem has no single place.</param>
    public GgufFormatException(string field, long offset, string message)
        : base(offset >= 0 ? $"bad GGUF at byte {offset} ({field}): {message}" : $"bad GGUF ({field}): {message}")
    {
        Field = field;
        Offset = offset;
    }

    public string Field { get; }

    public long Offset { get; }
}
