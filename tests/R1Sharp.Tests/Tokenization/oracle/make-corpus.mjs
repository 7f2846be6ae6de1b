// Writes corpus.json: the strings the token-exact tests encode with both Hugging Face and R1Sharp.
// Deterministic (seeded); rerun after editing: node make-corpus.mjs > corpus.json
// Random characters are drawn only among assigned code points (node's ICU), so that Unicode versions agree.

let seed = 0x5eed1234;
function rand() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rand() * a.length)];
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1));

const hand = [
  "Hello world", "Hello World's 'LL", "The quick brown fox jumps over the lazy dog.", "I'm sure you'll see we've done it, haven't we? They'd say it's 'fine'.",
  "DON'T SHOUT, I'M HERE. YOU'RE LATE. WE'VE GOT IT. SHE'LL COME. HE'D KNOW.", "rock 'n' roll ''' '' ' 's 'S 'Ll 'lL 'rE",
  "", " ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \n", "\n ", "a\n\nb", "a \n b", "a\r\n\r\nb", "a\t\tb\t", "trailing spaces   ", "   leading spaces",
  "tabs\tand\tspaces \t mixed\t \t", "line one\nline two\r\nline three\rline four", "multiple\n\n\n\nnewlines\n\n", "x  \n  y", "end with newline\n", "a \u00a0b\u3000c\u2003d",
  "1", "12", "123", "1234", "12345", "123456", "1234567", "3.14159", "1,000,000", "2024-01-15", "0x1F600", "v1.2.3-beta", "$12.50 and €30", "١٢٣ ٤٥٦", "०१२३", "Ⅻ ½ ² ① ⑳",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
  "public sealed class Foo { private int _x; public int X => _x * 2; }",
  "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }", "if (x != null && y >= 0) return x?.Length ?? -1;",
  "const f = async (a, b) => { await g(a); return `${a}:${b}`; };", "<div class=\"main\"><p>Hi &amp; bye</p></div>",
  "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}", "SELECT id, name FROM users WHERE age > 21 ORDER BY name;",
  "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n}\n", "    indented code\n        more indented\n", "x+=1;y-=2;z*=3;w/=4;", "a->b::c<d>(e)",
  "$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$", "\\boxed{42}", "$$\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}$$",
  "\\begin{align} a &= b + c \\\\ d &= e \\end{align}", "Let $f(x) = x^2 + 3x - 4$. Then $f'(x) = 2x + 3$.", "∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ ≤ ∏ⱼ bⱼ, √2 ≈ 1.414",
  "你好世界", "我爱北京天安门。", "深度求索的模型在数学推理上表现出色，例如：1+1=2。", "中文English混合123测试", "「引号」和『书名号』，还有——破折号……",
  "こんにちは世界", "日本語のテキストをトークン化します。カタカナとひらがな、漢字。", "ｶﾀｶﾅ ﾊﾝｶｸ", "東京タワーは333メートルです",
  "안녕하세요 세계", "한국어 텍스트 토큰화 테스트입니다.", "\u1100\u1161\u11a8 \u1112\u1161\u11ab", "각",
  "😀", "😀😃😄", "👍🏽", "👩‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵🇺🇸🇫🇷", "1️⃣ #️⃣", "👨🏿‍💻 writes code", "I ❤️ emoji! 🎉🎉🎉", "🧑‍🤝‍🧑", "smile😀smile", " 😀 ", "😀\n😀",
  "𝐀𝐁𝐂 𝑥𝑦𝑧 𝟏𝟐𝟑", "𐌰𐌱𐌲 Gothic", "𠀀𠀁𠀂 CJK Ext B", "𝄞 music", "𒀀 cuneiform", "\u{10FFFD}\u{F0000}", "a𝐀b", "𝟘𝟙𝟚𝟛𝟜",
  "Привет, мир!", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới", "Ünïcödé façade naïve café",
  "e\u0301 a\u0300 o\u0308", "\u1e9b\u0323", "A\u030a \u212b \u00c5", "\uf900\uf901 compat", "\u0344\u0301", "q\u0307\u0323", "ﬁ ﬂ ﬀ ligatures", "Å", "\u0915\u093c",
  "zero\u200bwidth\u200cjoin\u200d", "soft\u00adhyphen", "bom\ufeffinside", "nel\u0085char", "line\u2028sep\u2029para", "ctrl\u0001\u0007\u001b\u007f", "nul\u0000byte",
  "<｜begin▁of▁sentence｜>You are helpful.<｜User｜>What is 2+2?<｜Assistant｜><think>\nEasy.\n</think>\n\n4<｜end▁of▁sentence｜>",
  "<｜User｜>hi<｜Assistant｜>", "<think></think>", "text<think>reasoning</think>answer", "<|EOT|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", "< think >", "<thinking>", "<think", "think>", "<｜User", "｜>", "<<think>>", "<think><think>",
  "before <｜User｜> after", "x<|im_end|>y", "<tool_call>{\"name\": \"f\"}</tool_call>", "<｜tool▁calls▁begin｜>",
  "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis", "Antidisestablishmentarianism!!!", "CamelCaseIdentifierName snake_case_name kebab-case-name",
  "https://example.com/path?query=1&x=y#frag", "user@example.com", "C:\\Users\\name\\file.txt", "/usr/local/bin/dotnet", "!!!???...---", "...", "—", "--", "«»", "¿Qué?", "¡Hola!",
  "(a)[b]{c}<d>", "'quoted' \"double\" `back`", "a.b.c", "x=y", "@@@", "#hashtag", "%%%", "&&||", "~~~", "^_^", "|||", "\\\\", "''", "'", "'s", " 's", "'t'", "'ve'",
];

const out = [...hand];
out.push(" ".repeat(1000), "a".repeat(600), "9".repeat(100), "ab".repeat(200), "🎉".repeat(50), "\n".repeat(30), "你".repeat(80), "- ".repeat(100), "x\t".repeat(64));

// Digit runs of every length, bare and inside text.
for (let n = 1; n <= 40; n++) {
  let d = "";
  for (let i = 0; i < n; i++) d += String(int(0, 9));
  out.push(d, `x${d}y`, ` ${d} `);
}

// Contractions in every case, after words and at the start.
for (const c of ["s", "t", "re", "ve", "m", "ll", "d"]) {
  const variants = [c, c.toUpperCase(), c[0].toUpperCase() + c.slice(1)];
  for (const v of variants) out.push(`it'${v} ok`, `'${v}`, `X'${v}Y`);
}

// Whitespace runs between and around words.
const ws = [" ", "\t", "\n", "\r", "\r\n", "\u00a0", "\u3000", "  ", "\n\n"];
for (let i = 0; i < 80; i++) {
  let s = "";
  const parts = int(1, 5);
  for (let p = 0; p < parts; p++) {
    if (rand() < 0.7) s += pick(["a", "word", "X", "1", "!", "你", "😀", "é"]);
    let r = int(1, 4);
    while (r--) s += pick(ws);
  }
  out.push(s);
}

// Mixed fragments across scripts and kinds.
const frags = ["the", " cat", " sat", "'s", "'LL", " 42", "3.5", "你好", "世界", "こんにちは", "カタカナ", "한국어", "😀", "👍🏽", "🇫🇷", "👩‍💻", " $x^2$", "\\frac{a}{b}",
  "def", "(x)", " => ", "{", "}", "\n", "\t", "  ", "!", "?", "...", "Ünï", "e\u0301", "𝐀", "𠀀", "Привет", "مرحبا", " <｜User｜>", "<think>", "</think>", "<|EOT|>", "_", "-", "#", "@"];
for (let i = 0; i < 150; i++) {
  let s = "";
  const n = int(2, 12);
  for (let k = 0; k < n; k++) s += pick(frags);
  out.push(s);
}

// Random code points from interesting ranges and from all of Unicode, assigned and valid scalar values only.
const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff],
  [0x2000, 0x206f], [0x2100, 0x22ff], [0x3000, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xff00, 0xffef], [0x1d400, 0x1d7ff],
  [0x1f300, 0x1faff], [0x20000, 0x2a6df], [0x0, 0x10ffff]];
const assigned = (cp) => !(cp >= 0xd800 && cp <= 0xdfff) && !/\p{Cn}/u.test(String.fromCodePoint(cp));
for (let i = 0; i < 150; i++) {
  let s = "";
  const n = int(1, 30);
  const local = pick(ranges);
  while ([...s].length < n) {
    const [lo, hi] = rand() < 0.8 ? local : pick(ranges);
    const cp = int(lo, hi);
    if (assigned(cp)) s += String.fromCodePoint(cp);
  }
  out.push(s);
}

// Regex fuzz: short strings over one representative of each character class the pre-tokenizer regexes tell
// apart (letters, marks, numbers of each kind, punctuation, symbols, each kind of space, CJK range edges, ...).
const classes = ["a", "Z", "s", "S", "t", "l", "L", "d", "e", "v", "r", "m", "é", "\u0301", "\u0300", "1", "7", "²", "Ⅻ", "٣", "①", " ", " ", " ", "\t", "\n", "\r",
  "\u00a0", "\u3000", "\u2003", "\u0085", "\u2028", "!", "'", "'", "\"", "$", "+", ".", "_", "-", "`", "😀", "🏽", "\u200d", "\ufe0f", "你", "\u9fa5", "\u9fa6", "\u4e00",
  "\u4dff", "あ", "ア", "\u303f", "\u3040", "\u30ff", "\u3100", "ー", "・", "𝐀", "𝟏", "ſ", "\u0000", "\u0007", "\ufeff", "한", "\u1161", "\u11a8", "\ue000", "€", "©"];
for (let i = 0; i < 300; i++) {
  let s = "";
  const n = int(1, 16);
  for (let k = 0; k < n; k++) s += pick(classes);
  out.push(s);
}

process.stdout.write(JSON.stringify(out, null, 0).replace(/","/g, "\",\n\"") + "\n");
