// The npm `openai` client against a running server: one chat completion, one streamed, one legacy completion.
// Prints one JSON summary line; the C# test checks it.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, timeout: 30000, maxRetries: 0 });

const chat = await client.chat.completions.create({
  model: "tiny",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }],
  max_tokens: 10, temperature: 0, reasoning_budget: 3, ignore_eos: true,
});

const stream = await client.chat.completions.create({
  model: "tiny",
  messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }],
  max_tokens: 10, temperature: 0, reasoning_budget: 3, ignore_eos: true,
  stream: true, stream_options: { include_usage: true },
});
let reasoning = "", content = "", finish = null, usage = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    reasoning += c.delta.reasoning_content ?? "";
    content += c.delta.content ?? "";
    finish = c.finish_reason ?? finish;
  }
}

const completion = await client.completions.create({ model: "tiny", prompt: "The cat", max_tokens: 5, temperature: 0 });

let status = 0;
try {
  await client.chat.completions.create({ model: "other", messages: [{ role: "user", content: "Hi" }] });
} catch (e) {
  status = e.status;
}

console.log(JSON.stringify({
  chat: { content: chat.choices[0].message.content, reasoning: chat.choices[0].message.reasoning_content, finish: chat.choices[0].finish_reason, usage: chat.usage },
  stream: { content, reasoning, finish, usage },
  completion: { text: completion.choices[0].text, finish: completion.choices[0].finish_reason },
  unknownModelStatus: status,
}));
