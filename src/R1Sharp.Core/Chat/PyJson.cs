// JSON written as Python's json.dumps writes it with ensure_ascii=False (", " and ": " separators, or newlines and
// an indent), which is what the Jinja templates' `tojson` filter produces: the rendering a model was trained on.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace R1Sharp.Chat;

public static class PyJson
{
    /// <summary>json.dumps(value) or, with <paramref name="indent"/> > 0, json.dumps(value, indent=indent).</summary>
    public static string Dumps(JsonElement value, int indent = 0)
    {
        var sb = new StringBuilder();
        Write(sb, value, indent, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, JsonElement v, int indent, int depth)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.Object:
                WriteContainer(sb, '{', '}', v.EnumerateObject().ToList(), indent, depth, (p, d) =>
                {
                    WriteString(sb, p.Name);
                    sb.Append(": ");
                    Write(sb, p.Value, indent, d);
                });
                break;
            case JsonValueKind.Array:
                WriteContainer(sb, '[', ']', v.EnumerateArray().ToList(), indent, depth, (e, d) => Write(sb, e, indent, d));
                break;
            case JsonValueKind.String: WriteString(sb, v.GetString()!); break;
            case JsonValueKind.Number: sb.Append(Number(v)); break;
            case JsonValueKind.True: sb.Append("true"); break;
            case JsonValueKind.False: sb.Append("false"); break;
            default: sb.Append("null"); break;
        }
    }

    private static void WriteContainer<T>(StringBuilder sb, char open, char close, List<T> items, int indent, int depth, Action<T, int> item)
    {
        sb.Append(open);
        if (items.Count == 0) { sb.Append(close); return; }
        for (int i = 0; i < items.Count; i++)
        {
            if (indent > 0) sb.Append('\n').Append(' ', indent * (depth + 1));
            item(items[i], depth + 1);
            if (i < items.Count - 1) sb.Append(indent > 0 ? "," : ", ");
        }
        if (indent > 0) sb.Append('\n').Append(' ', indent * depth);
        sb.Append(close);
    }

    // Integers as written; other numbers as Python's repr of the float (shortest round trip, "1e-05" style exponents).
    private static string Number(JsonElement v)
    {
        string raw = v.GetRawText();
        if (v.TryGetInt64(out long l) && !raw.Contains('.') && !raw.Contains('e') && !raw.Contains('E')) return l.ToString(CultureInfo.InvariantCulture);
        double d = v.GetDouble();
        if (double.IsInfinity(d)) return d > 0 ? "Infinity" : "-Infinity";
        string r = d.ToString("R", CultureInfo.InvariantCulture);
        if (r.Contains('E'))
        {
            // .NET "1E-05" → Python "1e-05"; mantissa keeps its digits, exponent at least two digits
            int e = r.IndexOf('E');
            string mant = r[..e], exp = r[(e + 1)..];
            char sign = exp[0] == '-' ? '-' : '+';
            exp = exp.TrimStart('+', '-').TrimStart('0');
            if (exp.Length < 2) exp = exp.PadLeft(2, '0');
            return $"{mant}e{sign}{exp}";
        }
        return r.Contains('.') ? r : r + ".0";
    }

    private static void WriteString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
