// Status and progress for slow work (loading a model, quantizing, training), always on stderr so that stdout of
// machine-readable verbs stays clean. On a terminal: Spectre.Console spinners and bars. Otherwise (a pipe, a log
// file, NO_COLOR or TERM=dumb): plain lines, a status line at most every few seconds, so CI logs stay short.
using System.Diagnostics;
using R1Sharp.Engine;
using Spectre.Console;

namespace R1Sharp.Cli;

internal static class CliProgress
{
    /// <summary>Plain mode writes a progress line at most this often.</summary>
    private static readonly TimeSpan s_plainInterval = TimeSpan.FromSeconds(5);

    /// <summary>stderr is a terminal that can redraw a line.</summary>
    public static bool IsTerminal =>
        !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not ("dumb" or "") and not null;

    private static IAnsiConsole Stderr() => AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(Console.Error),
        Ansi = AnsiSupport.Yes,
        ColorSystem = Environment.GetEnvironmentVariable("NO_COLOR") is null ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        Interactive = InteractionSupport.Yes,
    });

    /// <summary>
    /// Runs <paramref name="work"/> under a spinner saying <paramref name="what"/> (terminal only: nothing is printed
    /// otherwise, the caller reports the outcome).
    /// </summary>
    public static T Status<T>(string what, Func<T> work)
    {
        if (!IsTerminal) return work();
        T result = default!;
        Stderr().Status().Spinner(Spinner.Known.Dots).Start(Markup.Escape(what), _ => result = work());
        return result;
    }

    /// <summary>
    /// Loads a draft model for <paramref name="target"/> (speculative decoding) under a spinner, on the target's worker
    /// threads; a line says what was loaded where a model line would be.
    /// </summary>
    public static DraftModelSource LoadDraft(string path, LoadedModel target, float pMin, bool reportPlain = false)
    {
        long size = File.Exists(path) ? new FileInfo(path).Length : 0;
        var sw = Stopwatch.StartNew();
        var source = Status($"loading draft {Path.GetFileName(path)} ({FormatBytes(size)})", () => DraftModelSource.Load(path, target, pMin));
        if (IsTerminal || reportPlain)
            Console.Error.WriteLine($"loaded draft {Path.GetFileName(path)}: {source.Model.Config.Architecture}, {source.Model.Config.Layers} layers, " +
                                    $"{FormatBytes(size)} in {sw.Elapsed.TotalSeconds:F1} s");
        return source;
    }

    /// <summary>
    /// Loads a model under a spinner. With <paramref name="report"/> a line says what was loaded and how long it took
    /// (on a terminal, or always when <paramref name="reportPlain"/>).
    /// </summary>
    public static LoadedModel LoadModel(string path, int threads, bool mmap = false, bool report = true, bool reportPlain = false)
    {
        long size = File.Exists(path) ? new FileInfo(path).Length : 0;
        var sw = Stopwatch.StartNew();
        var lm = Status($"loading {Path.GetFileName(path)} ({FormatBytes(size)})", () => LoadedModel.Load(path, threads, mmap));
        if (report && (IsTerminal || reportPlain))
            Console.Error.WriteLine($"loaded {Path.GetFileName(path)}: {lm.Config.Architecture}, {lm.Config.Layers} layers, " +
                                    $"{FormatBytes(lm.File.FileSize)}" + (lm.File.Paths.Count > 1 ? $" in {lm.File.Paths.Count} parts" : "") +
                                    $", in {sw.Elapsed.TotalSeconds:F1} s");
        if (lm.StaysMapped is string why) Console.Error.WriteLine($"note: the weights stay in the file mapping (decode is slower): {why}");
        // the model keeps answering from the file mapping if its copy into memory fails: slower, so say why
        lm.InMemory.ContinueWith(t =>
        {
            if (t.Exception?.InnerException is { } e and not (OperationCanceledException or ObjectDisposedException))
                Console.Error.WriteLine($"warning: the weights stay in the file mapping (decode is slower): {e.Message}");
        }, TaskContinuationOptions.OnlyOnFaulted);
        return lm;
    }

    /// <summary>
    /// Runs <paramref name="work"/> with a progress bar fed by the IProgress it is given (items done of a total, and
    /// the current item's name). Plain mode prints "what: done/total" lines at most every 5 s.
    /// </summary>
    public static void Bar(string what, string unit, Action<IProgress<(int Done, int Total, string Name)>> work)
    {
        if (!IsTerminal)
        {
            work(new PlainReporter(what, unit));
            return;
        }
        Stderr().Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(what), maxValue: 1);
                work(new BarReporter(task, what, unit));
                task.Value = task.MaxValue;
            });
    }

    /// <summary>
    /// Runs <paramref name="work"/> with a progress bar over bytes (done of a total, the current item's name) showing
    /// the rate and the time left. Plain mode prints "what: done/total MB, rate" lines at most every 5 s.
    /// </summary>
    public static void BytesBar(string what, Action<IProgress<(long Done, long Total, string Name)>> work)
    {
        if (!IsTerminal)
        {
            work(new PlainBytesReporter(what));
            return;
        }
        Stderr().Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                     new TransferSpeedColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(what), maxValue: 1);
                work(new BytesBarReporter(task, what));
                task.Value = task.MaxValue;
            });
    }

    public static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F1} GB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MB",
        _ => $"{bytes / 1024.0:F0} KB",
    };

    /// <summary>Updates the bar on the caller's thread (System.Progress would post to the thread pool and lag behind).</summary>
    private sealed class BarReporter(ProgressTask task, string what, string unit) : IProgress<(int Done, int Total, string Name)>
    {
        public void Report((int Done, int Total, string Name) p)
        {
            task.MaxValue = Math.Max(1, p.Total);
            task.Value = p.Done;
            task.Description = Markup.Escape($"{what} {p.Done}/{p.Total} {unit}" + (p.Name.Length > 0 ? $" ({p.Name})" : ""));
        }
    }

    private sealed class BytesBarReporter(ProgressTask task, string what) : IProgress<(long Done, long Total, string Name)>
    {
        public void Report((long Done, long Total, string Name) p)
        {
            task.MaxValue = Math.Max(1, p.Total);
            task.Value = p.Done;
            task.Description = Markup.Escape(p.Name.Length > 0 ? $"{what} ({p.Name})" : what);
        }
    }

    private sealed class PlainBytesReporter(string what) : IProgress<(long Done, long Total, string Name)>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew(), _all = Stopwatch.StartNew();

        public void Report((long Done, long Total, string Name) p)
        {
            if (_since.Elapsed < s_plainInterval || p.Done >= p.Total) return;
            _since.Restart();
            Console.Error.WriteLine($"{what}: {FormatBytes(p.Done)} of {FormatBytes(p.Total)}, {FormatBytes((long)(p.Done / Math.Max(_all.Elapsed.TotalSeconds, 1e-3)))}/s");
        }
    }

    private sealed class PlainReporter(string what, string unit) : IProgress<(int Done, int Total, string Name)>
    {
        private readonly Stopwatch _since = Stopwatch.StartNew();

        public void Report((int Done, int Total, string Name) p)
        {
            if (_since.Elapsed < s_plainInterval || p.Done >= p.Total) return;
            _since.Restart();
            Console.Error.WriteLine($"{what}: {p.Done}/{p.Total} {unit}");
        }
    }
}
