// Encodes the corpus with the Hugging Face tokenizers (the official JS port, @huggingface/tokenizers) and
// writes the expected ids: {tokenizer: [[ids of string 0], ...]}. Run by the tests' cache step:
//   node encode.mjs <dir holding node_modules> <corpus.json> <out.json>
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [root, corpusPath, outPath] = process.argv.slice(2);
const nm = path.join(root, "node_modules");
const { Tokenizer } = await import(pathToFileURL(path.join(nm, "@huggingface/tokenizers/dist/tokenizers.mjs")).href);
const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
const load = (pkg, file) => JSON.parse(fs.readFileSync(path.join(nm, "@lenml", pkg, "models", file), "utf8"));

// R1-Distill-Qwen: the Qwen2.5 tokenizer with the R1 tokens on ids 151643..151649.
function r1DistillQwen() {
  const json = load("tokenizer-qwen2_5", "tokenizer.json");
  const config = load("tokenizer-qwen2_5", "tokenizer_config.json");
  const r1 = ["<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<|EOT|>", "<think>", "</think>"];
  for (const t of json.added_tokens)
    if (t.id >= 151643 && t.id < 151643 + r1.length) {
      t.content = r1[t.id - 151643];
      t.special = t.id === 151643 || t.id === 151646;
    }
  delete config.added_tokens_decoder;
  config.bos_token = r1[3];
  config.eos_token = r1[0];
  config.pad_token = r1[0];
  return [json, config];
}

const tokenizers = {
  qwen2_5: () => [load("tokenizer-qwen2_5", "tokenizer.json"), load("tokenizer-qwen2_5", "tokenizer_config.json")],
  r1_distill_qwen: r1DistillQwen,
  deepseek_v3: () => [load("tokenizer-deepseek_v3", "tokenizer.json"), load("tokenizer-deepseek_v3", "tokenizer_config.json")],
  llama3_1: () => [load("tokenizer-llama3_1", "tokenizer.json"), load("tokenizer-llama3_1", "tokenizer_config.json")],
};

const out = {};
for (const [name, make] of Object.entries(tokenizers)) {
  const [json, config] = make();
  const tok = new Tokenizer(json, config);
  out[name] = corpus.map((s) => Array.from(tok.encode(s, { add_special_tokens: false }).ids));
}
fs.writeFileSync(outPath, JSON.stringify(out));
