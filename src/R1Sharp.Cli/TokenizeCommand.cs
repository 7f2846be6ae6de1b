// tokenize: text to token ids as JSON, reading only the tokenizer metadata (vocab-only GGUFs work).
using System.CommandLine;
using System.Text.Json;
using R1Sharp.Formats;
using R1Sharp.Tokenization;

namespace R1Sharp.Cli;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = CliCommon.ModelOption();
        var text = new Option<string>("--text") { Description = "text to tokenize (special tokens in it are parsed)" };
        var file = new Option<string>("--file") { Description = "a .jsonl file with one JSON string a line; prints one JSON array a line" };
        var bos = new Option<bool>("--bos") { Description = "prepend the BOS token" };
        var cmd = new Command("tokenize", "print the token ids of a text") { model, text, file, bos };
        cmd.SetAction(r => CliCommon.Run(() =>
        {
            string? t = r.GetValue(text), f = r.GetValue(file);
            if ((t is null) == (f is null)) throw new ArgumentException("give exactly one of --text and --file");
            using var gguf = GgufFile.Open(r.GetValue(model)!);
            var tokenizer = new BpeTokenizer(TokenizerData.FromGgufMetadata(gguf.Metadata));
            bool addBos = r.GetValue(bos);
            if (addBos && tokenizer.BosId is null)
                throw new ArgumentException("--bos: the vocabulary has no BOS token (the file has no tokenizer.ggml.bos_token_id)");
            var stdout = Console.Out;
            if (t is not null)
            {
                stdout.WriteLine(JsonSerializer.Serialize(tokenizer.Encode(t, addBos)));
                return 0;
            }
            foreach (var (_, s) in CliCommon.ReadJsonStringLines(f!))
                stdout.WriteLine(JsonSerializer.Serialize(tokenizer.Encode(s, addBos)));
            return 0;
        }));
        return cmd;
    }
}
