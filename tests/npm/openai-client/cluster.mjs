// The npm `openai` client against a cluster of `serve --cluster` nodes, driven by the C# end-to-end test:
// 1. multi-turn conversations (sharing system prompts) sent to random nodes: does each follow-up reuse its cached
//    prefix (usage.prompt_tokens_details.cached_tokens at least the previous prompt, less the 2 tokens the R1
//    template re-renders)?
// 2. long streams sent to the nodes that stay up; prints LOAD once they all stream, waits for KILLED on stdin (the
//    test has killed node VICTIM), and records how each stream ended and when;
// 3. after the kill: new requests to the survivors.
// Prints one JSON summary line.
import OpenAI from "openai";
import readline from "node:readline";

const [urlsArg, victimArg, seedArg] = process.argv.slice(2);
const urls = urlsArg.split(",");
const victim = Number(victimArg);
const clients = urls.map((u) => new OpenAI({ baseURL: `${u}v1`, apiKey: "none", timeout: 60000, maxRetries: 0 }));
let state = Number(seedArg) || 1;
const rand = (n) => { state = (state * 1103515245 + 12345) % 2147483648; return state % n; };
const survivors = urls.map((_, i) => i).filter((i) => i !== victim);
const describe = (e) => ({ status: e?.status ?? null, code: e?.code ?? e?.error?.code ?? null, message: String(e?.message ?? e).slice(0, 200) });

// 1. conversations
const systems = [
  "You are a careful assistant who answers questions about arithmetic. Explain each step of the working, check the result a second way, and finish with the answer on its own line. ".repeat(2),
  "You are a poet who writes short verses about the sea, the wind and the stars. Keep every verse to four lines, rhyme the second and the fourth, and never explain the poem. ".repeat(2),
];
const conversations = Array.from({ length: 6 }, (_, i) => ({ messages: [{ role: "system", content: systems[i % 2] }], prev: null }));
const followUps = [];
for (let turn = 0; turn < 4; turn++) {
  for (let c = 0; c < conversations.length; c++) {
    const conv = conversations[c];
    conv.messages.push({ role: "user", content: `Question ${turn} of conversation ${c}: what is ${c} plus ${turn}?` });
    const node = rand(urls.length);
    const r = await clients[node].chat.completions.create({
      model: "tiny", messages: conv.messages, max_tokens: 8, temperature: 0, reasoning_budget: 3, ignore_eos: true,
    });
    const cached = r.usage.prompt_tokens_details?.cached_tokens ?? 0;
    if (conv.prev !== null) followUps.push({ conversation: c, turn, node, prompt: r.usage.prompt_tokens, previous: conv.prev, cached });
    conv.prev = r.usage.prompt_tokens;
    conv.messages.push({ role: "assistant", content: r.choices[0].message.content ?? "" });
    await new Promise((res) => setTimeout(res, 30)); // a user reads before typing
  }
}

// 2. long streams to the survivors; the test kills the victim once they all stream
let killedAt = 0;
const input = readline.createInterface({ input: process.stdin });
const killed = new Promise((res) => input.on("line", (line) => { if (line.startsWith("KILLED")) { killedAt = Date.now(); res(); } }));
let started = 0;
const allStarted = new Promise((res) => { const check = setInterval(() => { if (started === 6) { clearInterval(check); res(); } }, 10); });
const streams = Array.from({ length: 6 }, async (_, k) => {
  const node = survivors[k % survivors.length];
  let tokens = 0, first = true;
  try {
    const stream = await clients[node].chat.completions.create({
      model: "tiny", messages: [{ role: "user", content: `Tell me story number ${k} about the sea, the wind and the stars, at length.` }],
      max_tokens: 1200, temperature: 0.7, ignore_eos: true, stream: true, stream_options: { include_usage: true },
    });
    for await (const chunk of stream) {
      if (first) { first = false; started++; }
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
    return { node, ok: true, tokens, endedAfterKillMs: killedAt ? Date.now() - killedAt : null };
  } catch (e) {
    if (first) started++;
    return { node, ok: false, error: describe(e), endedAfterKillMs: killedAt ? Date.now() - killedAt : null };
  }
});
await allStarted;
console.log("LOAD");
await killed;

// the survivors' view of membership, while the streams run
let deadAfterMs = null;
for (let i = 0; i < 150 && deadAfterMs === null; i++) {
  const view = await (await fetch(`${urls[survivors[0]]}v1/cluster`)).json();
  const names = view.members.filter((m) => m.status === "dead").map((m) => m.name);
  if (names.includes(`node${victim}`)) deadAfterMs = Date.now() - killedAt;
  else await new Promise((res) => setTimeout(res, 100));
}
const load = await Promise.all(streams);

// 3. new requests after the loss
const after = [];
for (let k = 0; k < 6; k++) {
  const node = survivors[k % survivors.length];
  try {
    const r = await clients[node].chat.completions.create({
      model: "tiny", messages: [{ role: "system", content: systems[k % 2] }, { role: "user", content: `After the loss, question ${k}.` }],
      max_tokens: 8, temperature: 0, ignore_eos: true,
    });
    after.push({ node, ok: true, tokens: r.usage.completion_tokens });
  } catch (e) {
    after.push({ node, ok: false, error: describe(e) });
  }
}
input.close();
console.log(JSON.stringify({ followUps, load, deadAfterMs, after }));
