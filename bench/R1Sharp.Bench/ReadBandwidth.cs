// The read bandwidth of the moment: the model's mapped weights summed with 512-bit loads by the benchmark's thread
// count, measured between the engines' runs so that decode speed can be given as a fraction of it.
using System.Runtime.Intrinsics;
using R1Sharp.Formats;
using R1Sharp.Models;

internal static unsafe class ReadBandwidth
{
    /// <summary>Bytes per second reading the file's tensor data once with <paramref name="threads"/> threads.</summary>
    public static double Measure(GgufFile file, int threads)
    {
        // one file's data section (a split model's largest part): its tensors lie in one mapping
        int part = file.Tensors.GroupBy(t => t.Part).MaxBy(g => g.Sum(t => t.ByteSize))!.Key;
        var tensors = file.Tensors.Where(t => t.Part == part).ToList();
        byte* start = file.TensorPointer(tensors.MinBy(t => t.Offset)!);
        var last = tensors.MaxBy(t => t.Offset)!;
        long bytes = file.TensorPointer(last) + new TensorEntry(last.Name, last.Shape, last.Type).Bytes - start;
        bytes &= ~255L;
        var sums = new long[threads];
        var workers = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            long from = bytes * i / threads & ~255L, to = bytes * (i + 1) / threads & ~255L;
            Vector512<long> a0 = default, a1 = default, a2 = default, a3 = default;
            for (byte* p = start + from, end = start + to; p < end; p += 256)
            {
                a0 += Vector512.Load((long*)p);
                a1 += Vector512.Load((long*)(p + 64));
                a2 += Vector512.Load((long*)(p + 128));
                a3 += Vector512.Load((long*)(p + 192));
            }
            sums[i] = Vector512.Sum((a0 + a1) + (a2 + a3));
        })).ToList();
        long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalSeconds;
        GC.KeepAlive(sums);
        return bytes / seconds;
    }

    /// <summary>
    /// Weight bytes one decode step reads: every tensor but an untied embedding table (of which one row is read), and
    /// for a mixture of experts only the active share of the weights (an estimate: all experts' matrices weigh alike).
    /// </summary>
    public static double BytesPerToken(GgufFile file)
    {
        var info = ModelInfo.From(file);
        double bytes = info.WeightBytes;
        var embed = file.FindTensor("token_embd.weight");
        if (embed != null && file.FindTensor("output.weight") != null) bytes -= new TensorEntry(embed.Name, embed.Shape, embed.Type).Bytes;
        return bytes * info.ActiveParameters / info.TotalParameters;
    }
}
