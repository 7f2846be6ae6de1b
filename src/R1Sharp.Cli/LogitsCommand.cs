// logits: raw F32 logits for a token sequence as JSON, the last position or all of them; no sampling.
using System.CommandLine;
using System.Text.Json;
using R1Sharp.Engine;

namespace R1Sharp.Cli;

internal static class LogitsCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var tokens = new Option<string>("--tokens") { Description = "comma-separated token ids, e.g. 1,2,3", Required = true };
        var all = new Option<bool>("--all") { Description = "print logits for every position, not only the last" };
        var threads = CliCommon.ThreadsOption();
        var mmap = CliCommon.MmapOption();
        var cacheType = CliCommon.CacheTypeOption();
        var cmd = new Command("logits", "print the model's logits for a token sequence as JSON") { model, tokens, all, threads, mmap };
        cacheType.AddTo(cmd);
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            var kvType = cacheType.Parse(r);
            int[] ids = CliCommon.ParseIds(r.GetValue(tokens)!);
            using var lm = LoadedModel.Load(r.GetValue(model)!, r.GetValue(threads), r.GetValue(mmap));
            using var session = new InferenceSession(lm.Model, ids.Length, kvType.K, kvType.V);
            bool every = r.GetValue(all);
            var logits = session.Evaluate(ids, every).ToArray();
            int vocab = lm.Config.VocabSize;

            using var stdout = Console.OpenStandardOutput();
            using var json = new Utf8JsonWriter(stdout);
            json.WriteStartObject();
            json.WriteNumber("n_vocab", vocab);
            json.WriteStartArray("logits");
            for (int row = 0; row < logits.Length / vocab; row++)
            {
                json.WriteStartArray();
                foreach (float f in logits.AsSpan(row * vocab, vocab)) json.WriteNumberValue(f);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            stdout.WriteByte((byte)'\n');
            return 0;
        }));
        return cmd;
    }
}
