// A minimal HTTP/1.1 client over a raw socket, so the soak controls every byte and every moment of a request: it can
// send invalid UTF-8 or a body in slow pieces, close the connection before the first byte of the answer or in the
// middle of a stream, and read one small piece at a time. One request per connection (Connection: close).
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace R1Sharp.Soak;

/// <summary>What a client does after sending its request.</summary>
public enum ReadMode
{
    /// <summary>Reads the whole response.</summary>
    Full,
    /// <summary>Closes the connection as soon as the request is sent.</summary>
    CloseAfterSend,
    /// <summary>Reads the status line and headers, then closes.</summary>
    CloseAfterHeaders,
    /// <summary>Reads SSE events until <see cref="RawRequest.StopReading"/> says so, then closes.</summary>
    CloseMidStream,
    /// <summary>Reads the whole response in small pieces with pauses (a reader slower than the server writes).</summary>
    Slow,
}

public sealed record RawRequest(string Method, string Path, byte[] Body)
{
    public string ContentType { get; init; } = "application/json";
    public ReadMode Mode { get; init; } = ReadMode.Full;
    /// <summary>Sends the body in this many pieces with pauses between them (a slow client); 1 sends it at once.</summary>
    public int BodyPieces { get; init; } = 1;
    /// <summary>Raw bytes sent instead of a well-formed request (the HTTP layer's own 400).</summary>
    public byte[]? Raw { get; init; }
    /// <summary>For CloseMidStream: whether to stop after the SSE data payloads seen so far.</summary>
    public Func<IReadOnlyList<string>, bool>? StopReading { get; init; }
}

public sealed class RawResponse
{
    /// <summary>0 when no status line was read (the client closed first, or the server closed without answering).</summary>
    public int Status { get; set; }
    public Dictionary<string, string> Headers { get; } = new(StringComparer.OrdinalIgnoreCase);
    public byte[] Body { get; set; } = [];
    /// <summary>The SSE data payloads read, in order (event-stream responses).</summary>
    public List<string> Events { get; } = [];
    /// <summary>The body ended as HTTP says it ends (the last chunk, or Content-Length bytes).</summary>
    public bool Complete { get; set; }
    /// <summary>The client closed the connection on purpose before the end.</summary>
    public bool ClosedByClient { get; set; }
    public TimeSpan FirstByte { get; set; }
    public TimeSpan Total { get; set; }
    public string ContentType => Headers.GetValueOrDefault("Content-Type", "");
    public string BodyText => Encoding.UTF8.GetString(Body);
}

/// <summary>The server reset or closed the connection in a way HTTP does not allow (a truncated response).</summary>
public sealed class ProtocolViolation(string message) : Exception(message);

public static class RawHttp
{
    public static async Task<RawResponse> SendAsync(IPEndPoint server, RawRequest req, CancellationToken deadline)
    {
        var started = Stopwatch.GetTimestamp();
        using var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (req.Mode == ReadMode.Slow) socket.ReceiveBufferSize = 2048;
        await socket.ConnectAsync(server, deadline);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var res = new RawResponse();

        byte[] head = req.Raw ?? Encoding.ASCII.GetBytes(
            $"{req.Method} {req.Path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n" +
            (req.Method == "GET" ? "" : $"Content-Type: {req.ContentType}\r\nContent-Length: {req.Body.Length}\r\n") + "\r\n");
        await stream.WriteAsync(head, deadline);
        if (req.Raw is null && req.Body.Length > 0)
        {
            int pieces = Math.Max(1, req.BodyPieces);
            int size = (req.Body.Length + pieces - 1) / pieces;
            for (int off = 0; off < req.Body.Length; off += size)
            {
                if (off > 0) await Task.Delay(40, deadline);
                try
                {
                    await stream.WriteAsync(req.Body.AsMemory(off, Math.Min(size, req.Body.Length - off)), deadline);
                }
                catch (IOException) when (off > 0 || req.Body.Length > 1 << 20)
                {
                    // the server may answer (413) and close before a large or slow body is all sent; read what it said
                    break;
                }
            }
        }
        if (req.Mode == ReadMode.CloseAfterSend)
        {
            res.ClosedByClient = true;
            socket.Shutdown(SocketShutdown.Both);
            return res;
        }

        var reader = new ByteReader(stream, req.Mode == ReadMode.Slow, deadline);
        string? status = await reader.ReadLineAsync();
        res.FirstByte = Stopwatch.GetElapsedTime(started);
        if (status is null) return Finish(res, started);
        var parts = status.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) || !int.TryParse(parts[1], out int code))
            throw new ProtocolViolation($"bad status line '{status}'");
        res.Status = code;
        while (await reader.ReadLineAsync() is { Length: > 0 } line)
        {
            int colon = line.IndexOf(':');
            if (colon <= 0) throw new ProtocolViolation($"bad header line '{line}'");
            res.Headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
        }
        if (req.Mode == ReadMode.CloseAfterHeaders)
        {
            res.ClosedByClient = true;
            return Finish(res, started);
        }

        var body = new MemoryStream();
        var sse = new SseSplitter(res.Events);
        bool Stop() => req.Mode == ReadMode.CloseMidStream && req.StopReading!(res.Events);
        if (res.Headers.TryGetValue("Transfer-Encoding", out var te) && te.Equals("chunked", StringComparison.OrdinalIgnoreCase))
        {
            while (true)
            {
                string? sizeLine = await reader.ReadLineAsync() ?? throw new ProtocolViolation("the connection closed inside a chunked body");
                int semi = sizeLine.IndexOf(';');
                if (!int.TryParse(semi < 0 ? sizeLine : sizeLine[..semi], System.Globalization.NumberStyles.HexNumber, null, out int size) || size < 0)
                    throw new ProtocolViolation($"bad chunk size line '{sizeLine}'");
                if (size == 0)
                {
                    while (await reader.ReadLineAsync() is { Length: > 0 }) { } // trailers
                    res.Complete = true;
                    break;
                }
                var chunk = await reader.ReadExactAsync(size) ?? throw new ProtocolViolation("the connection closed inside a chunk");
                body.Write(chunk);
                sse.Add(chunk);
                if (await reader.ReadLineAsync() is not "") throw new ProtocolViolation("a chunk is not followed by CRLF");
                if (Stop())
                {
                    res.ClosedByClient = true;
                    break;
                }
            }
        }
        else if (res.Headers.TryGetValue("Content-Length", out var cl))
        {
            if (!long.TryParse(cl, out long length) || length < 0 || length > 64 << 20) throw new ProtocolViolation($"bad Content-Length '{cl}'");
            var bytes = await reader.ReadExactAsync((int)length) ?? throw new ProtocolViolation("the connection closed before Content-Length bytes");
            body.Write(bytes);
            sse.Add(bytes);
            res.Complete = true;
        }
        else
        {
            // no framing: the body runs to the end of the connection (Connection: close)
            while (await reader.ReadSomeAsync() is { } piece) { body.Write(piece); sse.Add(piece); }
            res.Complete = true;
        }
        res.Body = body.ToArray();
        return Finish(res, started);
    }

    private static RawResponse Finish(RawResponse res, long started)
    {
        res.Total = Stopwatch.GetElapsedTime(started);
        return res;
    }

    /// <summary>Splits an event stream into its `data:` payloads as bytes arrive.</summary>
    private sealed class SseSplitter(List<string> events)
    {
        private readonly List<byte> _pending = [];

        public void Add(ReadOnlySpan<byte> bytes)
        {
            _pending.AddRange(bytes);
            while (true)
            {
                int end = -1;
                for (int i = 0; i + 1 < _pending.Count; i++)
                    if (_pending[i] == '\n' && _pending[i + 1] == '\n') { end = i; break; }
                if (end < 0) return;
                string block = Encoding.UTF8.GetString(_pending.GetRange(0, end).ToArray());
                _pending.RemoveRange(0, end + 2);
                foreach (var line in block.Split('\n'))
                    if (line.StartsWith("data: ", StringComparison.Ordinal)) events.Add(line[6..]);
            }
        }
    }

    /// <summary>Buffered reads of lines (CRLF) and exact byte counts; slow mode reads at most 256 bytes, then pauses.</summary>
    private sealed class ByteReader(Stream stream, bool slow, CancellationToken ct)
    {
        private readonly byte[] _buffer = new byte[slow ? 256 : 16384];
        private int _start, _end;

        private async Task<bool> FillAsync()
        {
            if (_start < _end) return true;
            if (slow) await Task.Delay(15, ct);
            int n;
            try
            {
                n = await stream.ReadAsync(_buffer, ct);
            }
            catch (IOException e) when (e.InnerException is SocketException)
            {
                throw new ProtocolViolation($"the server reset the connection: {e.InnerException.Message}");
            }
            _start = 0;
            _end = n;
            return n > 0;
        }

        public async Task<string?> ReadLineAsync()
        {
            var line = new List<byte>();
            while (true)
            {
                if (!await FillAsync()) return line.Count == 0 ? null : throw new ProtocolViolation("the connection closed inside a line");
                int nl = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                int stop = nl < 0 ? _end : nl;
                line.AddRange(_buffer.AsSpan(_start, stop - _start));
                _start = nl < 0 ? _end : nl + 1;
                if (nl >= 0)
                {
                    if (line.Count == 0 || line[^1] != '\r') throw new ProtocolViolation("a line does not end with CRLF");
                    return Encoding.ASCII.GetString(line.ToArray(), 0, line.Count - 1);
                }
                if (line.Count > 65536) throw new ProtocolViolation("a line of more than 64 KiB");
            }
        }

        public async Task<byte[]?> ReadExactAsync(int count)
        {
            var result = new byte[count];
            int got = 0;
            while (got < count)
            {
                if (!await FillAsync()) return null;
                int n = Math.Min(count - got, _end - _start);
                Array.Copy(_buffer, _start, result, got, n);
                _start += n;
                got += n;
            }
            return result;
        }

        public async Task<byte[]?> ReadSomeAsync()
        {
            if (!await FillAsync()) return null;
            var piece = _buffer.AsSpan(_start, _end - _start).ToArray();
            _start = _end;
            return piece;
        }
    }
}
