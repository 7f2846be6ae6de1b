// The fuzzing program (FuzzTargets has the targets):
//   R1Sharp.Fuzz TARGET              under afl-fuzz: SharpFuzz's persistent loop over stdin (scripts/fuzz.sh runs it)
//   R1Sharp.Fuzz TARGET FILE|DIR...  replays inputs without AFL, each with a time limit; exit 1 on a crash or a hang
//   R1Sharp.Fuzz --seeds DIR         writes the seed corpora (DIR/TARGET/*), as committed under fuzz/corpus
//   R1Sharp.Fuzz --list              the targets
using R1Sharp.Fuzz;
using SharpFuzz;

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: R1Sharp.Fuzz TARGET [FILE|DIR...] | --seeds DIR | --list");
    return 2;
}
if (args[0] == "--list")
{
    foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name,-14} {t.Surface}");
    return 0;
}
if (args[0] == "--seeds")
{
    Seeds.Write(args.Length > 1 ? args[1] : "fuzz/corpus");
    return 0;
}
FuzzTarget target;
try { target = FuzzTargets.Find(args[0]); }
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
if (args.Length == 1)
{
    Fuzzer.Run(stream =>
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        target.Run(buffer.ToArray());
    });
    return 0;
}
return Replay.Run(target, args.Skip(1), TimeSpan.FromSeconds(10), Console.Out) == 0 ? 0 : 1;
