// Grammars of the string formats JSON Schema names (over the characters of the value): date-time, date and
// time (RFC 3339, with real month lengths and February 29 only in leap years), uuid, email (a dot-atom local
// part, a domain ending in a letters-only label), ipv4, ipv6 (RFC 4291's forms), hostname (RFC 1123 labels, 253 characters at most), uri (an absolute RFC 3986 URI).
namespace R1Sharp.Grammar;

internal static class StringFormats
{
    public static GNode? Get(string format) => format switch
    {
        "date-time" => new GSeq([Date, C('T', 't', ' '), Time]), // the space as RFC 3339 section 5.6's note, ajv and JsonSchema.Net allow
        "date" => Date,
        "time" => Time,
        "uuid" => new GSeq([Hex(8), L("-"), Hex(4), L("-"), Hex(4), L("-"), Hex(4), L("-"), Hex(12)]),
        "email" => new GSeq([DotAtom, L("@"), EmailDomain]),
        "ipv4" => Ipv4,
        "ipv6" => Ipv6,
        "hostname" => Hostname,
        "uri" => Uri,
        _ => null,
    };

    private static GLit L(string s) => new(s);
    private static GClass C(params char[] cs) => new(cs.Select(c => ((int)c, (int)c)).ToList(), false);
    private static GClass R(char lo, char hi) => new([(lo, hi)], false);
    private static GNode Alt(params GNode[] x) => new GAlt(x);
    private static GNode Seq(params GNode[] x) => new GSeq(x);
    private static GNode Rep(GNode x, int min, int max) => new GRepeat(x, min, max);
    private static readonly GClass Digit = R('0', '9');
    private static readonly GClass HexDigit = new([('0', '9'), ('a', 'f'), ('A', 'F')], false);
    private static GNode Hex(int n) => Rep(HexDigit, n, n);

    // years divisible by 4, except centuries not divisible by 400
    private static readonly GNode LeapYear = Alt(
        Seq(Digit, Digit, Alt(Seq(L("0"), C('4', '8')), Seq(C('2', '4', '6', '8'), C('0', '4', '8')), Seq(C('1', '3', '5', '7', '9'), C('2', '6')))),
        Seq(Alt(Seq(L("0"), C('4', '8')), Seq(C('2', '4', '6', '8'), C('0', '4', '8')), Seq(C('1', '3', '5', '7', '9'), C('2', '6'))), L("00")));
    private static readonly GNode Day28 = Alt(Seq(L("0"), R('1', '9')), Seq(L("1"), Digit), Seq(L("2"), R('0', '8')));
    private static readonly GNode Day30 = Alt(Seq(L("0"), R('1', '9')), Seq(C('1', '2'), Digit), L("30"));
    private static readonly GNode Day31 = Alt(Seq(L("0"), R('1', '9')), Seq(C('1', '2'), Digit), Seq(L("3"), C('0', '1')));
    private static readonly GNode Date = Alt(
        Seq(Rep(Digit, 4, 4), L("-"), Alt(
            Seq(Alt(L("01"), L("03"), L("05"), L("07"), L("08"), L("10"), L("12")), L("-"), Day31),
            Seq(Alt(L("04"), L("06"), L("09"), L("11")), L("-"), Day30),
            Seq(L("02-"), Day28))),
        Seq(LeapYear, L("-02-29")));
    private static readonly GNode Hour = Alt(Seq(C('0', '1'), Digit), Seq(L("2"), R('0', '3')));
    private static readonly GNode Minute = Seq(R('0', '5'), Digit);
    private static readonly GNode Time = Seq(Hour, L(":"), Minute, L(":"), Minute, Rep(Seq(L("."), Rep(Digit, 1, 9)), 0, 1),
        Alt(C('Z', 'z'), Seq(C('+', '-'), Hour, L(":"), Minute)));

    private static readonly GNode Octet = Alt(Seq(L("25"), R('0', '5')), Seq(L("2"), R('0', '4'), Digit), Seq(L("1"), Digit, Digit), Seq(R('1', '9'), Digit), Digit);
    private static readonly GNode Ipv4 = Seq(Octet, L("."), Octet, L("."), Octet, L("."), Octet);

    private static readonly GNode H16 = Rep(HexDigit, 1, 4);
    private static readonly GNode Ls32 = Alt(Seq(H16, L(":"), H16), Ipv4);
    private static GNode H16Colon(int n) => Rep(Seq(H16, L(":")), n, n);
    // [ *k( h16 ":" ) h16 ]
    private static GNode Before(int k) => Rep(Seq(Rep(Seq(H16, L(":")), 0, k), H16), 0, 1);
    private static readonly GNode Ipv6 = Alt(
        Seq(H16Colon(6), Ls32),
        Seq(L("::"), H16Colon(5), Ls32),
        Seq(Rep(H16, 0, 1), L("::"), H16Colon(4), Ls32),
        Seq(Before(1), L("::"), H16Colon(3), Ls32),
        Seq(Before(2), L("::"), H16Colon(2), Ls32),
        Seq(Before(3), L("::"), H16, L(":"), Ls32),
        Seq(Before(4), L("::"), Ls32),
        Seq(Before(5), L("::"), H16),
        Seq(Before(6), L("::")));

    private static readonly GClass LetDig = new([('0', '9'), ('A', 'Z'), ('a', 'z')], false);
    // a label of 1 to maxLength letters, digits and inner hyphens
    private static GNode Label(int maxLength) =>
        Seq(LetDig, Rep(Seq(Rep(new GClass([('0', '9'), ('A', 'Z'), ('a', 'z'), ('-', '-')], false), 0, maxLength - 2), LetDig), 0, 1));
    // At most 253 characters in all (RFC 1123; validators refuse longer names): up to four labels of up to 63 (the
    // last up to 61), or up to twelve of up to 20. Stricter than the RFC for long names of many long labels, never looser.
    private static readonly GNode Hostname = Alt(
        Seq(Label(63), Rep(Seq(L("."), Label(63)), 0, 2), Rep(Seq(L("."), Label(61)), 0, 1)),
        Seq(Label(20), Rep(Seq(L("."), Label(20)), 0, 11)));

    // An email's domain: a hostname of two labels or more whose last label is letters (two or more), as validators
    // require of an address (JsonSchema.Net refuses "a@localhost" and "a@b.c1"); 253 characters at most.
    private static readonly GClass Alpha = new([('A', 'Z'), ('a', 'z')], false);
    private static readonly GNode EmailDomain = Alt(
        Seq(Label(63), Rep(Seq(L("."), Label(63)), 0, 2), L("."), Rep(Alpha, 2, 61)),
        Seq(Label(20), Rep(Seq(L("."), Label(20)), 0, 10), L("."), Rep(Alpha, 2, 20)));

    private static readonly GClass AText = new([('a', 'z'), ('A', 'Z'), ('0', '9'), ('!', '!'), ('#', '\''), ('*', '+'), ('-', '-'), ('/', '/'),
        ('=', '='), ('?', '?'), ('^', '`'), ('{', '~')], false);
    private static readonly GNode DotAtom = Seq(Rep(AText, 1, 64), Rep(Seq(L("."), Rep(AText, 1, 64)), 0, 16));

    // scheme ":" then unreserved / sub-delims / ":" "@" "/" "?" "#" and percent-encodings
    private static readonly GNode Uri = Seq(R('a', 'z').Or(R('A', 'Z')), Rep(new GClass([('a', 'z'), ('A', 'Z'), ('0', '9'), ('+', '+'), ('-', '.')], false), 0, -1), L(":"),
        Rep(Alt(new GClass([('a', 'z'), ('A', 'Z'), ('0', '9'), ('-', '.'), ('_', '_'), ('~', '~'), ('!', '!'), ('$', '$'), ('&', '/'), (':', ';'), ('=', '='),
            ('?', '@'), ('#', '#'), ('[', '['), (']', ']')], false), Seq(L("%"), HexDigit, HexDigit)), 0, -1));

    private static GClass Or(this GClass a, GClass b) => new([.. a.Ranges, .. b.Ranges], false);
}
