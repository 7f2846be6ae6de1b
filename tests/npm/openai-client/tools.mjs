// The npm `openai` client streaming a forced tool call, then sending the tool's result back: prints one JSON line
// (the call assembled from its delta.tool_calls chunks, the finish reasons, the follow-up's answer).
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, timeout: 60000, maxRetries: 0 });

const tools = [{
  type: "function",
  function: {
    name: "get_forecast",
    description: "The forecast for a number of days",
    parameters: {
      type: "object",
      properties: { days: { type: "integer", minimum: 1, maximum: 7 }, unit: { enum: ["celsius", "fahrenheit"] } },
      required: ["days", "unit"],
      additionalProperties: false,
    },
  },
}];
const messages = [{ role: "user", content: "What will the weather be?" }];

const stream = await client.chat.completions.create({
  model: "tiny", messages, tools, tool_choice: "required",
  max_tokens: 600, temperature: 1, seed: 4, reasoning_budget: 6, stream: true,
});
const calls = [];
let finish = null, chunks = 0;
for await (const chunk of stream) {
  for (const c of chunk.choices) {
    finish = c.finish_reason ?? finish;
    for (const d of c.delta.tool_calls ?? []) {
      chunks++;
      if (d.id) calls[d.index] = { id: d.id, type: d.type, name: d.function.name, arguments: "" };
      calls[d.index].arguments += d.function.arguments ?? "";
    }
  }
}

messages.push({ role: "assistant", content: null, tool_calls: calls.map(c => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } })) });
for (const c of calls) messages.push({ role: "tool", tool_call_id: c.id, content: JSON.stringify({ forecast: "sunny" }) });
const followUp = await client.chat.completions.create({
  model: "tiny", messages, tools, max_tokens: 12, temperature: 0, reasoning_budget: 3,
});

console.log(JSON.stringify({ calls, finish, chunks, followUp: { finish: followUp.choices[0].finish_reason, content: followUp.choices[0].message.content } }));
