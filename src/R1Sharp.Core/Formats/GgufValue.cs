// A GGUF metadata value: one of the scalar types, a string, or a typed array of them.
namespace R1Sharp.Formats;

public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>
/// A metadata value. Scalars are held boxed as their CLR type (byte, sbyte, ushort, short, uint, int, float,
/// bool, string, ulong, long, double); arrays as a CLR array of the element type (string[] for strings,
/// GgufValue[] for nested arrays) with <see cref="ElementType"/> naming the element type.
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue Of(string s) => new(GgufValueType.String, s);
    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);
    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);
    public static GgufValue Of(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Of(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);
    public static GgufValue Of(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Of(byte v) => new(GgufValueType.UInt8, v);
    public static GgufValue Of(sbyte v) => new(GgufValueType.Int8, v);
    public static GgufValue Of(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue Of(short v) => new(GgufValueType.Int16, v);
    public static GgufValue Of(long v) => new(GgufValueType.Int64, v);
    public static GgufValue Of(double v) => new(GgufValueType.Float64, v);
    public static GgufValue Of(byte[] v) => new(GgufValueType.Array, v, GgufValueType.UInt8);
    public static GgufValue Of(sbyte[] v) => new(GgufValueType.Array, v, GgufValueType.Int8);
    public static GgufValue Of(ushort[] v) => new(GgufValueType.Array, v, GgufValueType.UInt16);
    public static GgufValue Of(short[] v) => new(GgufValueType.Array, v, GgufValueType.Int16);
    public static GgufValue Of(uint[] v) => new(GgufValueType.Array, v, GgufValueType.UInt32);
    public static GgufValue Of(bool[] v) => new(GgufValueType.Array, v, GgufValueType.Bool);
    public static GgufValue Of(ulong[] v) => new(GgufValueType.Array, v, GgufValueType.UInt64);
    public static GgufValue Of(long[] v) => new(GgufValueType.Array, v, GgufValueType.Int64);
    public static GgufValue Of(double[] v) => new(GgufValueType.Array, v, GgufValueType.Float64);

    /// <summary>An array of arrays; every item must itself be an array value.</summary>
    public static GgufValue Of(GgufValue[] arrays) => new(GgufValueType.Array, arrays, GgufValueType.Array);

    /// <summary>The value as a 64-bit integer when it is any integer type (or bool), else null.</summary>
    public long? AsInt64() => Value switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui, int i => i,
        ulong ul => ul <= long.MaxValue ? (long)ul : null, long l => l, bool bo => bo ? 1 : 0, _ => null,
    };

    /// <summary>The value as a double when it is numeric, else null.</summary>
    public double? AsDouble() => Value switch { float f => f, double d => d, _ => AsInt64() };

    public int ArrayLength => Value is System.Array a ? a.Length : 0;

    public override string ToString() => Value switch
    {
        string s => s,
        System.Array a => $"[{ElementType} x {a.Length}]",
        _ => Convert.ToString(Value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };
}
