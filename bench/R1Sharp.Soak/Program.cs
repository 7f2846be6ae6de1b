// Soak and chaos test of `serve` (see SoakRunner and docs/reliability.md). The defaults are the manual setting:
//   dotnet run --project bench/R1Sharp.Soak -c Release -- [--model M.gguf] [--requests 6000] [--clients 32] [--slots 4]
//       [--max-queue 8] [--ctx 512] [--bursts 6] [--threads 2] [--seed 1] [--deadline-s 120] [--only KIND,KIND]
// It prints a Markdown summary and exits 1 on any violation.
using R1Sharp.Soak;

string? model = null;
var o = new SoakOptions { Model = "", Requests = 6000, Bursts = 6, Deadline = TimeSpan.FromSeconds(120) };
try
{
    for (int i = 0; i < args.Length; i++)
    {
        string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        int Int() => int.TryParse(Value(), out int v) && v >= 0 ? v : throw new ArgumentException($"{args[i]}: not a count");
        switch (args[i])
        {
            case "--model": model = Value(); break;
            case "--requests": o = o with { Requests = Int() }; break;
            case "--clients": o = o with { Clients = Int() }; break;
            case "--slots": o = o with { Slots = Int() }; break;
            case "--max-queue": o = o with { MaxQueue = Int() }; break;
            case "--ctx": o = o with { Context = Int() }; break;
            case "--bursts": o = o with { Bursts = Math.Max(1, Int()) }; break;
            case "--threads": o = o with { Threads = Int() }; break;
            case "--seed": o = o with { Seed = Int() }; break;
            case "--deadline-s": o = o with { Deadline = TimeSpan.FromSeconds(Int()) }; break;
            case "--warm-up": o = o with { WarmUp = Int() }; break;
            case "--only": o = o with { Only = Value().Split(',').ToHashSet() }; break;
            default: throw new ArgumentException($"unknown option {args[i]}");
        }
    }
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
model ??= Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "models"), "*.gguf").OrderBy(p => p).First();
var result = await SoakRunner.RunAsync(o with { Model = model, Progress = line => Console.Error.WriteLine(line) });
Console.WriteLine(SoakReport.Format(result));
return result.Passed ? 0 : 1;
