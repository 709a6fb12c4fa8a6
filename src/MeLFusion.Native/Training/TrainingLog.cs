using System.Globalization;
using System.Text;
using MeLFusion.Native.IO;

namespace MeLFusion.Native.Training;

/// <summary>One row of a run's log.</summary>
public sealed record LogEntry(long Step, float Loss, float GradientNorm, double LearningRate, float ValidationLoss, double Seconds, double SamplesPerSecond);

/// <summary>
/// A run's <c>log.csv</c> (one row per logged step) and <c>loss.svg</c> (training loss and validation loss against
/// the step). On resume the rows past the checkpoint's step are dropped, so the log matches the weights.
/// </summary>
public sealed class TrainingLog
{
    public const string Header = "step,loss,grad_norm,learning_rate,validation_loss,seconds,samples_per_second";
    private readonly List<LogEntry> _entries = [];

    public TrainingLog(string directory, long resumedStep)
    {
        CsvPath = Path.Combine(directory, "log.csv");
        SvgPath = Path.Combine(directory, "loss.svg");
        if (File.Exists(CsvPath))
            foreach (var line in File.ReadLines(CsvPath).Skip(1))
                if (Parse(line) is { } e && e.Step <= resumedStep) _entries.Add(e);
        Rewrite();
    }

    public string CsvPath { get; }
    public string SvgPath { get; }
    public IReadOnlyList<LogEntry> Entries => _entries;

    public void Add(LogEntry entry)
    {
        _entries.Add(entry);
        File.AppendAllText(CsvPath, Format(entry) + "\n");
    }

    /// <summary>Redraws the loss curve (written atomically, so a viewer never sees half a file).</summary>
    public void WriteChart() => AtomicFile.Write(SvgPath, s => s.Write(Encoding.UTF8.GetBytes(LossChart.Render(_entries))));

    private void Rewrite() =>
        AtomicFile.Write(CsvPath, s => s.Write(Encoding.UTF8.GetBytes(Header + "\n" + string.Concat(_entries.Select(e => Format(e) + "\n")))));

    private static string Format(LogEntry e) => string.Join(",",
        e.Step.ToString(CultureInfo.InvariantCulture), F(e.Loss), F(e.GradientNorm), e.LearningRate.ToString("G6", CultureInfo.InvariantCulture),
        float.IsNaN(e.ValidationLoss) ? "" : F(e.ValidationLoss), e.Seconds.ToString("F2", CultureInfo.InvariantCulture),
        e.SamplesPerSecond.ToString("F3", CultureInfo.InvariantCulture));

    private static string F(float v) => v.ToString("G7", CultureInfo.InvariantCulture);

    private static LogEntry? Parse(string line)
    {
        var c = line.Split(',');
        if (c.Length != 7 || !long.TryParse(c[0], CultureInfo.InvariantCulture, out long step)) return null;
        static float P(string s) => float.TryParse(s, CultureInfo.InvariantCulture, out var v) ? v : float.NaN;
        return new LogEntry(step, P(c[1]), P(c[2]), P(c[3]), P(c[4]), P(c[5]), P(c[6]));
    }
}

/// <summary>A dependency-free SVG line chart of the training and validation loss.</summary>
internal static class LossChart
{
    private const int Width = 720, Height = 360, Left = 70, Right = 20, Top = 30, Bottom = 45;

    public static string Render(IReadOnlyList<LogEntry> entries)
    {
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        var train = entries.Where(e => float.IsFinite(e.Loss)).Select(e => (e.Step, (double)e.Loss)).ToArray();
        var validation = entries.Where(e => float.IsFinite(e.ValidationLoss)).Select(e => (e.Step, (double)e.ValidationLoss)).ToArray();
        var all = train.Concat(validation).ToArray();
        if (all.Length == 0)
            return svg.Append("<text x=\"20\" y=\"30\">no finite losses logged yet</text>\n</svg>\n").ToString();
        double x0 = all.Min(p => p.Step), x1 = Math.Max(x0 + 1, all.Max(p => p.Step));
        double y0 = Math.Min(0, all.Min(p => p.Item2)), y1 = all.Max(p => p.Item2);
        if (y1 <= y0) y1 = y0 + 1;
        double X(double step) => Left + (step - x0) / (x1 - x0) * (Width - Left - Right);
        double Y(double loss) => Height - Bottom - (loss - y0) / (y1 - y0) * (Height - Top - Bottom);
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Height - Bottom}\" x2=\"{Width - Right}\" y2=\"{Height - Bottom}\" stroke=\"black\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" y1=\"{Top}\" x2=\"{Left}\" y2=\"{Height - Bottom}\" stroke=\"black\"/>\n");
        for (int i = 0; i <= 4; i++)
        {
            double v = y0 + (y1 - y0) * i / 4, s = x0 + (x1 - x0) * i / 4;
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{Y(v) + 4:F1}\" text-anchor=\"end\">{v:G3}</text>\n");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{X(s):F1}\" y=\"{Height - Bottom + 16}\" text-anchor=\"middle\">{s:F0}</text>\n");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{(Left + Width - Right) / 2}\" y=\"{Height - 8}\" text-anchor=\"middle\">step</text>\n");
        Polyline(svg, train, X, Y, "#1f77b4", "training loss", 0);
        Polyline(svg, validation, X, Y, "#d62728", "validation loss", 1);
        return svg.Append("</svg>\n").ToString();
    }

    private static void Polyline(StringBuilder svg, (long Step, double Loss)[] points, Func<double, double> x, Func<double, double> y, string color, string label, int row)
    {
        if (points.Length == 0) return;
        svg.Append("<polyline fill=\"none\" stroke=\"").Append(color).Append("\" stroke-width=\"1.5\" points=\"");
        foreach (var (step, loss) in points) svg.Append(CultureInfo.InvariantCulture, $"{x(step):F1},{y(loss):F1} ");
        svg.Append("\"/>\n");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - Right - 140}\" y=\"{Top + 14 * row}\" fill=\"{color}\">{label}</text>\n");
    }
}
