// Per-step metrics of a training run: appended to a CSV as they come (so a long run can be watched with tail), and
// drawn as curves into a PNG with ScottPlot, one panel per group of metrics.
using System.Globalization;
using ScottPlot;

namespace R1Sharp.Training;

public sealed class TrainingLog
{
    private readonly string[] _columns;
    private readonly List<double[]> _rows = new();
    private readonly string? _csvPath;

    public TrainingLog(string? csvPath, params string[] columns) : this(csvPath, 0, columns) { }

    /// <summary>
    /// A log that continues a resumed run: the rows of an existing CSV with the same columns up to step
    /// <paramref name="resumeAfter"/> are kept (those logged after the checkpoint, before the run was killed, go).
    /// </summary>
    public TrainingLog(string? csvPath, int resumeAfter, params string[] columns)
    {
        _columns = ["step", .. columns];
        _csvPath = csvPath;
        if (csvPath == null) return;
        if (Path.GetDirectoryName(Path.GetFullPath(csvPath)) is { } dir) Directory.CreateDirectory(dir);
        string header = string.Join(',', _columns);
        var kept = new List<string>();
        if (resumeAfter > 0 && File.Exists(csvPath) && File.ReadAllLines(csvPath) is [var first, .. var rest] && first == header)
        {
            foreach (string line in rest)
            {
                var row = line.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                if (row.Length != _columns.Length || row[0] > resumeAfter) continue;
                _rows.Add(row);
                kept.Add(line);
            }
        }
        File.WriteAllLines(csvPath, [header, .. kept]);
    }

    public IReadOnlyList<double[]> Rows => _rows;

    public void Add(int step, params double[] values)
    {
        if (values.Length != _columns.Length - 1) throw new ArgumentException($"expected {_columns.Length - 1} values");
        double[] row = [step, .. values];
        _rows.Add(row);
        if (_csvPath != null)
            File.AppendAllText(_csvPath, string.Join(',', row.Select(v => v.ToString("G6", CultureInfo.InvariantCulture))) + "\n");
    }

    public double[] Column(string name)
    {
        int i = Array.IndexOf(_columns, name);
        if (i < 0) throw new ArgumentException($"no column {name}");
        return _rows.Select(r => r[i]).ToArray();
    }

    /// <summary>Draws each group of columns as one panel of curves against the step (a moving average when noisy).</summary>
    public void Plot(string pngPath, string title, IReadOnlyList<string[]> panels, int smooth = 1)
    {
        if (_rows.Count == 0) return;
        var mp = new Multiplot();
        mp.AddPlots(panels.Count);
        double[] steps = Column("step");
        for (int p = 0; p < panels.Count; p++)
        {
            var plot = mp.GetPlot(p);
            foreach (string name in panels[p])
            {
                var sc = plot.Add.ScatterLine(steps, Smooth(Column(name), smooth));
                sc.LegendText = name;
                sc.LineWidth = 2;
            }
            plot.ShowLegend(Alignment.UpperLeft);
            plot.XLabel("step");
            if (p == 0) plot.Title(title);
        }
        mp.SavePng(pngPath, 900, 300 * panels.Count);
    }

    private static double[] Smooth(double[] v, int window)
    {
        if (window <= 1) return v;
        var o = new double[v.Length];
        double sum = 0;
        for (int i = 0; i < v.Length; i++)
        {
            sum += v[i];
            if (i >= window) sum -= v[i - window];
            o[i] = sum / Math.Min(i + 1, window);
        }
        return o;
    }
}
