// A grammar lowered to bytes: each rule becomes a DFA whose edges are byte ranges or calls of other rules
// (code-point classes expanded to UTF-8 sequences, repetitions and alternations determinized). The matcher
// runs these DFAs as a pushdown automaton. Refused here: left recursion (it would expand without end) and
// rules that can never complete.
using System.Text;

namespace R1Sharp.Grammar;

public sealed class GrammarAutomaton
{
    /// <summary>Most NFA states one grammar may lower to (a guard against huge repetition counts).</summary>
    public const int MaxNfaStates = 2_000_000;

    internal int StateCount;
    internal int[] RuleOf = [];
    internal bool[] Accepting = [];
    internal int[] TransStart = [];      // StateCount + 1, into TLo/THi/TTarget
    internal byte[] TLo = [], THi = [];
    internal int[] TTarget = [];
    internal int[] CallStart = [];       // StateCount + 1, into CallRule/CallReturn
    internal int[] CallRule = [], CallReturn = [];
    internal int[] RuleStart = [];
    internal string[] RuleNames = [];
    /// <summary>Accepting with no edges: a call returning here needs no return frame (tail call).</summary>
    internal bool[] TrivialFinal = [];

    public GrammarDefinition Definition { get; }
    public int Root { get; private set; }
    public int RuleCount => RuleNames.Length;
    public int DfaStateCount => StateCount;

    private GrammarAutomaton(GrammarDefinition def) => Definition = def;

    internal bool HasBytes(int s) => TransStart[s + 1] > TransStart[s];

    /// <summary>
    /// A key naming what DFA state <paramref name="start"/> does with the next <paramref name="depth"/> bytes, in any
    /// grammar: a hash of the part of its rule's DFA that a string of at most that many bytes can reach from it
    /// (states renumbered in discovery order, those out of reach marked as such; a distance is a lower bound: a byte
    /// edge counts one, a call's return none) and of the whole DFAs of the rules it calls. States with equal keys
    /// accept, refuse and leave their frame alike on every string of up to <paramref name="depth"/> bytes, so they
    /// accept the same tokens of up to that length: grammars and rules that share behaviour (JSON strings, numbers,
    /// whitespace, the body of an object key once it has left every declared name) share their token sets, and a
    /// bounded string with hundreds of characters left shares them with one with dozens. Null where more than
    /// <paramref name="maxStates"/> states are within reach (not worth hashing).
    /// </summary>
    internal UInt128? BoundedKey(int start, int depth, int maxStates)
    {
        if (!_boundedKeys.TryGetValue(depth, out var cache))
            _boundedKeys[depth] = cache = (new UInt128[StateCount], new byte[StateCount]);
        if (cache.Done[start] == 0)
        {
            var k = BoundedSignature(start, depth, maxStates);
            cache.Keys[start] = k ?? default;
            cache.Done[start] = k is null ? (byte)2 : (byte)1;
        }
        return cache.Done[start] == 1 ? cache.Keys[start] : null;
    }

    // per depth: the keys, and whether each is known (0 unknown, 1 keyed, 2 none)
    private readonly Dictionary<int, (UInt128[] Keys, byte[] Done)> _boundedKeys = [];
    private byte[] _keyBuffer = new byte[4096];

    private UInt128? BoundedSignature(int start, int depth, int maxStates)
    {
        // distances by buckets (byte edges +1, call returns +0), states past 'depth' not expanded
        var dist = new Dictionary<int, int> { [start] = 0 };
        var buckets = new List<int>?[depth + 1];
        buckets[0] = [start];
        for (int d = 0; d <= depth; d++)
        {
            var bucket = buckets[d];
            if (bucket is null) continue;
            for (int k = 0; k < bucket.Count; k++)
            {
                int st = bucket[k];
                if (dist[st] != d) continue;
                if (dist.Count > maxStates) return null;
                for (int t = TransStart[st]; t < TransStart[st + 1]; t++) Relax(TTarget[t], d + 1);
                for (int c = CallStart[st]; c < CallStart[st + 1]; c++) Relax(CallReturn[c], d);
            }
        }
        // the reachable part in discovery order, as fixed-width fields
        var order = new List<int> { start };
        var index = new Dictionary<int, int> { [start] = 0 };
        int n = 0;
        Put(depth);
        for (int i = 0; i < order.Count; i++)
        {
            int st = order[i];
            Put(Accepting[st] ? 1 : 0);
            Put(TransStart[st + 1] - TransStart[st]);
            for (int t = TransStart[st]; t < TransStart[st + 1]; t++) { Put(TLo[t] | THi[t] << 8); Put(Index(TTarget[t])); }
            Put(CallStart[st + 1] - CallStart[st]);
            for (int c = CallStart[st]; c < CallStart[st + 1]; c++)
            {
                if (CalleeKey(CallRule[c]) is not UInt128 ck) return null;
                Put((int)(uint)ck); Put((int)(uint)(ck >> 32)); Put((int)(uint)(ck >> 64)); Put((int)(uint)(ck >> 96));
                Put(Index(CallReturn[c]));
            }
        }
        return HashKey(_keyBuffer.AsSpan(0, n));

        void Relax(int st, int d)
        {
            if (d > depth || (dist.TryGetValue(st, out int old) && old <= d)) return;
            dist[st] = d;
            (buckets[d] ??= []).Add(st);
        }

        int Index(int st)
        {
            if (!dist.ContainsKey(st)) return -1; // beyond reach
            if (!index.TryGetValue(st, out int x)) { x = order.Count; index[st] = x; order.Add(st); }
            return x;
        }

        void Put(int x)
        {
            if (n + 4 > _keyBuffer.Length) Array.Resize(ref _keyBuffer, _keyBuffer.Length * 2);
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(_keyBuffer.AsSpan(n), x);
            n += 4;
        }
    }

    private UInt128? CalleeKey(int callee)
    {
        _calleeKeys ??= new UInt128?[RuleCount];
        _calleeKnown ??= new bool[RuleCount];
        if (!_calleeKnown[callee])
        {
            _calleeKeys[callee] = ClosureSignature(callee) is string sig ? HashKey(Encoding.UTF8.GetBytes(sig)) : null;
            _calleeKnown[callee] = true;
        }
        return _calleeKeys[callee];
    }

    private UInt128?[]? _calleeKeys;
    private bool[]? _calleeKnown;

    /// <summary>The first 16 bytes of the SHA-256 of <paramref name="data"/>.</summary>
    internal static UInt128 HashKey(ReadOnlySpan<byte> data)
    {
        Span<byte> h = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(data, h);
        return new UInt128(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(h),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(h[8..]));
    }

    /// <summary>Rules whose closure (the rule and those it calls) has more DFA states than this get no shared key.</summary>
    private const int MaxSharedClosureStates = 4096;

    private string? ClosureSignature(int root)
    {
        var order = new List<int> { root };
        var index = new Dictionary<int, int> { [root] = 0 };
        int states = 0;
        var sb = new StringBuilder();
        for (int i = 0; i < order.Count; i++)
        {
            int r = order[i];
            int first = RuleStart[r], end = first;
            while (end < StateCount && RuleOf[end] == r) end++;
            states += end - first;
            if (states > MaxSharedClosureStates) return null;
            sb.Append('R').Append(end - first).Append(':');
            for (int st = first; st < end; st++)
            {
                sb.Append(Accepting[st] ? 'A' : 'N');
                for (int t = TransStart[st]; t < TransStart[st + 1]; t++)
                    sb.Append(TLo[t]).Append('-').Append(THi[t]).Append('>').Append(TTarget[t] - first).Append(',');
                for (int c = CallStart[st]; c < CallStart[st + 1]; c++)
                {
                    int callee = CallRule[c];
                    if (!index.TryGetValue(callee, out int ci)) { ci = order.Count; index[callee] = ci; order.Add(callee); }
                    sb.Append('C').Append(ci).Append('>').Append(CallReturn[c] - first).Append(',');
                }
                sb.Append(';');
            }
        }
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>The state after byte <paramref name="b"/> from <paramref name="s"/>, or -1.</summary>
    internal int Next(int s, byte b)
    {
        for (int i = TransStart[s], e = TransStart[s + 1]; i < e; i++)
        {
            if (b < TLo[i]) return -1;
            if (b <= THi[i]) return TTarget[i];
        }
        return -1;
    }

    public static GrammarAutomaton Compile(GrammarDefinition def)
    {
        var a = new GrammarAutomaton(def);
        a.Build();
        return a;
    }

    // ---------------- NFA (Thompson) ----------------

    private struct Bits256
    {
        public ulong A, B, C, D;
        public void Set(int lo, int hi) { for (int i = lo; i <= hi; i++) Set(i); }
        public void Set(int i)
        {
            ulong m = 1UL << (i & 63);
            switch (i >> 6) { case 0: A |= m; break; case 1: B |= m; break; case 2: C |= m; break; default: D |= m; break; }
        }
        public readonly bool Has(int i) => ((i >> 6) switch { 0 => A, 1 => B, 2 => C, _ => D } >> (i & 63) & 1) != 0;
        public readonly bool IsEmpty => (A | B | C | D) == 0;
        public void Or(in Bits256 o) { A |= o.A; B |= o.B; C |= o.C; D |= o.D; }
    }

    private sealed class NState
    {
        public List<int>? Eps;
        public List<(Bits256 Set, int To)>? Bytes;
        public List<(int Rule, int To)>? Calls;
    }

    private sealed class Nfa
    {
        public readonly List<NState> S = [];
        public int Start, Final;
        public int Add() { S.Add(new NState()); return S.Count - 1; }
        public void Eps(int f, int t) => (S[f].Eps ??= []).Add(t);
        public void Byte(int f, Bits256 set, int t) => (S[f].Bytes ??= []).Add((set, t));
        public void Call(int f, int rule, int t) => (S[f].Calls ??= []).Add((rule, t));
    }

    private int _nfaTotal;
    private Dictionary<string, int> _ruleIndex = null!;
    private readonly Dictionary<GClass, List<(byte Lo, byte Hi)[]>> _classCache = new();

    private void Build()
    {
        // rules reachable from the root, root first
        var names = new List<string> { Definition.Root };
        _ruleIndex = new Dictionary<string, int>(StringComparer.Ordinal) { [Definition.Root] = 0 };
        for (int i = 0; i < names.Count; i++)
            CollectRefs(Definition[names[i]], names);
        RuleNames = names.ToArray();
        var nfas = new Nfa[names.Count];
        for (int r = 0; r < names.Count; r++)
        {
            var nfa = new Nfa();
            nfa.Start = nfa.Add();
            nfa.Final = Lower(nfa, Definition[names[r]], nfa.Start);
            nfas[r] = nfa;
        }
        CheckLeftRecursion(nfas);
        Determinize(nfas);
        PruneDead();
        MergeEquivalent();
    }

    private void CollectRefs(GNode n, List<string> names)
    {
        switch (n)
        {
            case GRef r:
                if (_ruleIndex.TryAdd(r.Name, names.Count)) names.Add(r.Name);
                break;
            case GSeq s: foreach (var i in s.Items) CollectRefs(i, names); break;
            case GAlt a: foreach (var i in a.Items) CollectRefs(i, names); break;
            case GRepeat p: CollectRefs(p.Item, names); break;
        }
    }

    private int NewState(Nfa nfa)
    {
        if (++_nfaTotal > MaxNfaStates)
            throw new GrammarException($"the grammar is too large (over {MaxNfaStates} automaton states; lower the repetition counts)");
        return nfa.Add();
    }

    // Adds the NFA of n starting at 'from'; returns its end state.
    private int Lower(Nfa nfa, GNode n, int from)
    {
        switch (n)
        {
            case GLit l:
            {
                int cur = from;
                foreach (byte b in Encoding.UTF8.GetBytes(l.Text))
                {
                    var set = new Bits256();
                    set.Set(b);
                    int next = NewState(nfa);
                    nfa.Byte(cur, set, next);
                    cur = next;
                }
                return cur;
            }
            case GSeq s:
            {
                int cur = from;
                foreach (var item in s.Items) cur = Lower(nfa, item, cur);
                return cur;
            }
            case GAlt a:
            {
                int end = NewState(nfa);
                foreach (var item in a.Items)
                {
                    int st = NewState(nfa);
                    nfa.Eps(from, st);
                    nfa.Eps(Lower(nfa, item, st), end);
                }
                return end;
            }
            case GRef r:
            {
                int next = NewState(nfa);
                nfa.Call(from, _ruleIndex[r.Name], next);
                return next;
            }
            case GClass c:
            {
                int end = NewState(nfa);
                var ascii = new Bits256();
                foreach (var seq in Utf8Sequences(c))
                {
                    if (seq.Length == 1) { ascii.Set(seq[0].Lo, seq[0].Hi); continue; }
                    int cur = from;
                    for (int i = 0; i < seq.Length; i++)
                    {
                        var set = new Bits256();
                        set.Set(seq[i].Lo, seq[i].Hi);
                        int next = i == seq.Length - 1 ? end : NewState(nfa);
                        nfa.Byte(cur, set, next);
                        cur = next;
                    }
                }
                if (!ascii.IsEmpty) nfa.Byte(from, ascii, end);
                return end;
            }
            case GRepeat p:
            {
                int cur = from;
                for (int i = 0; i < p.Min; i++) cur = Lower(nfa, p.Item, cur);
                if (p.Max < 0)
                {
                    int loop = NewState(nfa);
                    nfa.Eps(cur, loop);
                    nfa.Eps(Lower(nfa, p.Item, loop), loop);
                    return loop;
                }
                if (p.Max == p.Min) return cur;
                int end = NewState(nfa);
                for (int i = p.Min; i < p.Max; i++)
                {
                    nfa.Eps(cur, end);
                    cur = Lower(nfa, p.Item, cur);
                }
                nfa.Eps(cur, end);
                return end;
            }
            default: throw new InvalidOperationException(n.GetType().Name);
        }
    }

    // ---------------- code points to UTF-8 ----------------

    /// <summary>The code-point ranges a class matches: sorted, merged, surrogates removed.</summary>
    internal static List<(int Lo, int Hi)> ClassRanges(GClass c)
    {
        var rs = c.Ranges.Select(r => (Lo: Math.Max(0, r.Lo), Hi: Math.Min(0x10FFFF, r.Hi))).Where(r => r.Lo <= r.Hi)
            .OrderBy(r => r.Lo).ToList();
        var merged = new List<(int Lo, int Hi)>();
        foreach (var r in rs)
        {
            if (merged.Count > 0 && r.Lo <= merged[^1].Hi + 1) merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, r.Hi));
            else merged.Add(r);
        }
        if (c.Negated)
        {
            var neg = new List<(int, int)>();
            int next = 0;
            foreach (var (lo, hi) in merged)
            {
                if (lo > next) neg.Add((next, lo - 1));
                next = hi + 1;
            }
            if (next <= 0x10FFFF) neg.Add((next, 0x10FFFF));
            merged = neg;
        }
        var result = new List<(int, int)>();
        foreach (var (lo, hi) in merged)
        {
            if (hi < 0xD800 || lo > 0xDFFF) { result.Add((lo, hi)); continue; }
            if (lo < 0xD800) result.Add((lo, 0xD7FF));
            if (hi > 0xDFFF) result.Add((0xE000, hi));
        }
        return result;
    }

    private List<(byte Lo, byte Hi)[]> Utf8Sequences(GClass c)
    {
        if (_classCache.TryGetValue(c, out var cached)) return cached;
        var seqs = new List<(byte, byte)[]>();
        foreach (var (lo, hi) in ClassRanges(c)) SplitRange(lo, hi, seqs);
        _classCache[c] = seqs;
        return seqs;
    }

    private static readonly int[] s_utf8Max = [0x7F, 0x7FF, 0xFFFF, 0x10FFFF];

    // Splits [lo, hi] into ranges whose UTF-8 encodings are products of byte ranges.
    internal static void SplitRange(int lo, int hi, List<(byte Lo, byte Hi)[]> output)
    {
        // same encoded length first
        for (int k = 0; k < 3; k++)
            if (lo <= s_utf8Max[k] && hi > s_utf8Max[k])
            {
                SplitRange(lo, s_utf8Max[k], output);
                SplitRange(s_utf8Max[k] + 1, hi, output);
                return;
            }
        int n = Utf8Length(lo);
        if (n == 1) { output.Add([((byte)lo, (byte)hi)]); return; }
        for (int i = 1; i < n; i++)
        {
            int m = (1 << (6 * i)) - 1;
            if ((lo & ~m) != (hi & ~m))
            {
                if ((lo & m) != 0) { SplitRange(lo, lo | m, output); SplitRange((lo | m) + 1, hi, output); return; }
                if ((hi & m) != m) { SplitRange(lo, (hi & ~m) - 1, output); SplitRange(hi & ~m, hi, output); return; }
            }
        }
        Span<byte> a = stackalloc byte[4], b = stackalloc byte[4];
        new Rune(lo).EncodeToUtf8(a);
        new Rune(hi).EncodeToUtf8(b);
        var seq = new (byte, byte)[n];
        for (int i = 0; i < n; i++) seq[i] = (a[i], b[i]);
        output.Add(seq);
    }

    private static int Utf8Length(int cp) => cp <= 0x7F ? 1 : cp <= 0x7FF ? 2 : cp <= 0xFFFF ? 3 : 4;

    // ---------------- checks ----------------

    private void CheckLeftRecursion(Nfa[] nfas)
    {
        int n = nfas.Length;
        // nullable rules: the final state is reachable from the start through epsilons and calls of nullable rules
        var nullable = new bool[n];
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int r = 0; r < n; r++)
                if (!nullable[r] && Reach(nfas[r], nullable, null).Contains(nfas[r].Final)) { nullable[r] = true; changed = true; }
        }
        // rules callable before any byte is consumed
        var first = new List<int>[n];
        for (int r = 0; r < n; r++)
        {
            first[r] = [];
            Reach(nfas[r], nullable, first[r]);
        }
        var color = new byte[n];
        var path = new List<int>();
        for (int r = 0; r < n; r++) Dfs(r);

        void Dfs(int r)
        {
            if (color[r] == 2) return;
            if (color[r] == 1)
                throw new GrammarException($"rule '{RuleNames[r]}' is left-recursive (it can call itself before reading a character)");
            color[r] = 1;
            foreach (int x in first[r]) Dfs(x);
            color[r] = 2;
        }
    }

    // States reachable from the start of a rule without consuming a byte; calls seen are added to 'calls'.
    private static HashSet<int> Reach(Nfa nfa, bool[] nullable, List<int>? calls)
    {
        var seen = new HashSet<int> { nfa.Start };
        var stack = new Stack<int>();
        stack.Push(nfa.Start);
        while (stack.Count > 0)
        {
            var st = nfa.S[stack.Pop()];
            if (st.Eps is not null) foreach (int t in st.Eps) if (seen.Add(t)) stack.Push(t);
            if (st.Calls is not null)
                foreach (var (rule, to) in st.Calls)
                {
                    if (calls is not null && !calls.Contains(rule)) calls.Add(rule);
                    if (nullable[rule] && seen.Add(to)) stack.Push(to);
                }
        }
        return seen;
    }

    // ---------------- subset construction ----------------

    private void Determinize(Nfa[] nfas)
    {
        var ruleOf = new List<int>();
        var accepting = new List<bool>();
        var trans = new List<(byte Lo, byte Hi, int To)[]>();
        var calls = new List<(int Rule, int To)[]>();
        RuleStart = new int[nfas.Length];

        for (int r = 0; r < nfas.Length; r++)
        {
            var nfa = nfas[r];
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            var sets = new List<int[]>();
            var work = new Queue<int>();

            int Intern(IEnumerable<int> seed)
            {
                int[] set = Closure(nfa, seed);
                string key = string.Join(',', set);
                if (ids.TryGetValue(key, out int id)) return id;
                id = ruleOf.Count;
                ids[key] = id;
                ruleOf.Add(r);
                accepting.Add(Array.BinarySearch(set, nfa.Final) >= 0);
                trans.Add([]);
                calls.Add([]);
                sets.Add(set);
                work.Enqueue(id);
                return id;
            }

            int baseId = ruleOf.Count;
            RuleStart[r] = Intern([nfa.Start]);
            while (work.Count > 0)
            {
                int id = work.Dequeue();
                int[] set = sets[id - baseId];
                // byte edges: group bytes by the NFA states they lead to
                var edges = new List<(Bits256 Set, int To)>();
                var callMap = new SortedDictionary<int, List<int>>();
                foreach (int s in set)
                {
                    var st = nfa.S[s];
                    if (st.Bytes is not null) edges.AddRange(st.Bytes);
                    if (st.Calls is not null)
                        foreach (var (rule, to) in st.Calls)
                        {
                            if (!callMap.TryGetValue(rule, out var l)) callMap[rule] = l = [];
                            l.Add(to);
                        }
                }
                var tr = new List<(byte, byte, int)>();
                if (edges.Count > 0)
                {
                    var union = new Bits256();
                    foreach (var e in edges) union.Or(e.Set);
                    // bytes grouped by which edges hold them (a bitmask when there are at most 64 edges):
                    // the target set, its closure and its id are computed once per group
                    var byGroup = new Dictionary<ulong, int>();
                    var byTargets = new Dictionary<string, int>(StringComparer.Ordinal);
                    var targets = new List<int>();
                    int runLo = -1, runTo = -1;
                    for (int b = 0; b < 256; b++)
                    {
                        int to = -1;
                        if (union.Has(b))
                        {
                            ulong sig = 0;
                            if (edges.Count <= 64)
                                for (int k = 0; k < edges.Count; k++) if (edges[k].Set.Has(b)) sig |= 1UL << k;
                            if (edges.Count > 64 || !byGroup.TryGetValue(sig, out to))
                            {
                                targets.Clear();
                                foreach (var e in edges) if (e.Set.Has(b) && !targets.Contains(e.To)) targets.Add(e.To);
                                targets.Sort();
                                string key = string.Join(',', targets);
                                if (!byTargets.TryGetValue(key, out to)) byTargets[key] = to = Intern(targets);
                                if (edges.Count <= 64) byGroup[sig] = to;
                            }
                        }
                        if (to != runTo)
                        {
                            if (runTo >= 0) tr.Add(((byte)runLo, (byte)(b - 1), runTo));
                            runLo = b;
                            runTo = to;
                        }
                    }
                    if (runTo >= 0) tr.Add(((byte)runLo, 255, runTo));
                }
                trans[id] = tr.ToArray();
                calls[id] = callMap.Select(kv => (kv.Key, Intern(kv.Value))).ToArray();
            }
        }

        StateCount = ruleOf.Count;
        RuleOf = ruleOf.ToArray();
        Accepting = accepting.ToArray();
        SetEdges(trans, calls);
    }

    private void SetEdges(List<(byte Lo, byte Hi, int To)[]> trans, List<(int Rule, int To)[]> calls)
    {
        TransStart = new int[StateCount + 1];
        CallStart = new int[StateCount + 1];
        for (int s = 0; s < StateCount; s++)
        {
            TransStart[s + 1] = TransStart[s] + trans[s].Length;
            CallStart[s + 1] = CallStart[s] + calls[s].Length;
        }
        TLo = new byte[TransStart[StateCount]];
        THi = new byte[TLo.Length];
        TTarget = new int[TLo.Length];
        CallRule = new int[CallStart[StateCount]];
        CallReturn = new int[CallRule.Length];
        for (int s = 0; s < StateCount; s++)
        {
            for (int i = 0; i < trans[s].Length; i++)
                (TLo[TransStart[s] + i], THi[TransStart[s] + i], TTarget[TransStart[s] + i]) = trans[s][i];
            for (int i = 0; i < calls[s].Length; i++)
                (CallRule[CallStart[s] + i], CallReturn[CallStart[s] + i]) = calls[s][i];
        }
        TrivialFinal = new bool[StateCount];
        for (int s = 0; s < StateCount; s++)
            TrivialFinal[s] = Accepting[s] && TransStart[s + 1] == TransStart[s] && CallStart[s + 1] == CallStart[s];
    }

    private static int[] Closure(Nfa nfa, IEnumerable<int> seed)
    {
        var seen = new HashSet<int>();
        var stack = new Stack<int>();
        foreach (int s in seed) if (seen.Add(s)) stack.Push(s);
        while (stack.Count > 0)
        {
            var st = nfa.S[stack.Pop()];
            if (st.Eps is not null) foreach (int t in st.Eps) if (seen.Add(t)) stack.Push(t);
        }
        // keep only states that matter: with edges, or the final one
        var result = seen.Where(s => s == nfa.Final || nfa.S[s].Bytes is not null || nfa.S[s].Calls is not null).ToArray();
        Array.Sort(result);
        return result;
    }

    // Drops edges into states from which no accepting state can be reached, so that every live configuration can complete.
    // Merges the states of a rule that accept alike and have the same edges to the same states and the same calls
    // returning to the same states, round after round (a merge can make predecessors equal) until none do. Subset
    // construction leaves such twins where alternatives end alike: the rest of an object key after a character no
    // declared name continues with is one state per place in the names, and so are the UTF-8 sequences leading to it.
    // Fewer states mean fewer token sets to compute and configurations whose successors are already known.
    private void MergeEquivalent()
    {
        var rep = new int[StateCount];
        for (int s = 0; s < StateCount; s++) rep[s] = s;
        bool any = false;
        var sig = new List<int>();
        for (int round = 0; round < MaxMergeRounds; round++)
        {
            var seen = new Dictionary<int[], int>(IntArrayComparer.Instance);
            bool changed = false;
            for (int s = 0; s < StateCount; s++)
            {
                if (rep[s] != s) continue;
                Signature(s, sig);
                int[] key = [.. sig];
                if (seen.TryGetValue(key, out int r)) { rep[s] = r; changed = true; }
                else seen[key] = s;
            }
            if (!changed) break;
            any = true;
        }
        if (!any) return;
        var newId = new int[StateCount];
        int n = 0;
        for (int s = 0; s < StateCount; s++) if (rep[s] == s) newId[s] = n++;
        var ruleOf = new int[n];
        var accepting = new bool[n];
        var trans = new List<(byte, byte, int)[]>(n);
        var calls = new List<(int, int)[]>(n);
        for (int s = 0; s < StateCount; s++)
        {
            if (rep[s] != s) continue;
            ruleOf[newId[s]] = RuleOf[s];
            accepting[newId[s]] = Accepting[s];
            var tr = new List<(byte Lo, byte Hi, int To)>();
            for (int t = TransStart[s]; t < TransStart[s + 1]; t++)
            {
                int to = newId[Find(TTarget[t])];
                if (tr.Count > 0 && tr[^1].To == to && tr[^1].Hi + 1 == TLo[t]) tr[^1] = (tr[^1].Lo, THi[t], to);
                else tr.Add((TLo[t], THi[t], to));
            }
            trans.Add([.. tr]);
            var cl = new (int, int)[CallStart[s + 1] - CallStart[s]];
            for (int c = CallStart[s]; c < CallStart[s + 1]; c++) cl[c - CallStart[s]] = (CallRule[c], newId[Find(CallReturn[c])]);
            calls.Add(cl);
        }
        for (int r = 0; r < RuleStart.Length; r++) RuleStart[r] = newId[Find(RuleStart[r])];
        StateCount = n;
        RuleOf = ruleOf;
        Accepting = accepting;
        SetEdges(trans, calls);

        int Find(int s)
        {
            while (rep[s] != s) s = rep[s] = rep[rep[s]];
            return s;
        }

        void Signature(int s, List<int> into)
        {
            into.Clear();
            into.Add(RuleOf[s]);
            into.Add(Accepting[s] ? 1 : 0);
            int lastTo = -1, lastHi = -2;
            for (int t = TransStart[s]; t < TransStart[s + 1]; t++)
            {
                int to = Find(TTarget[t]);
                if (to == lastTo && lastHi + 1 == TLo[t]) into[^1] = THi[t];
                else { into.Add(-1); into.Add(to); into.Add(TLo[t]); into.Add(THi[t]); lastTo = to; }
                lastHi = THi[t];
            }
            for (int c = CallStart[s]; c < CallStart[s + 1]; c++) { into.Add(-2); into.Add(CallRule[c]); into.Add(Find(CallReturn[c])); }
        }
    }

    private const int MaxMergeRounds = 8;

    private sealed class IntArrayComparer : IEqualityComparer<int[]>
    {
        public static readonly IntArrayComparer Instance = new();
        public bool Equals(int[]? a, int[]? b) => a.AsSpan().SequenceEqual(b);
        public int GetHashCode(int[] a)
        {
            var h = new HashCode();
            h.AddBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()));
            return h.ToHashCode();
        }
    }

    private void PruneDead()
    {
        var live = new bool[StateCount];
        for (bool changed = true; changed;)
        {
            changed = false;
            for (int s = 0; s < StateCount; s++)
            {
                if (live[s]) continue;
                bool l = Accepting[s];
                for (int i = TransStart[s]; !l && i < TransStart[s + 1]; i++) l = live[TTarget[i]];
                for (int i = CallStart[s]; !l && i < CallStart[s + 1]; i++) l = live[CallReturn[i]] && live[RuleStart[CallRule[i]]];
                if (l) { live[s] = true; changed = true; }
            }
        }
        if (!live[RuleStart[0]]) throw new GrammarException($"the grammar matches nothing (rule '{RuleNames[0]}' can never complete)");
        var trans = new List<(byte, byte, int)[]>(StateCount);
        var calls = new List<(int, int)[]>(StateCount);
        for (int s = 0; s < StateCount; s++)
        {
            var tr = new List<(byte, byte, int)>();
            for (int i = TransStart[s]; i < TransStart[s + 1]; i++) if (live[TTarget[i]]) tr.Add((TLo[i], THi[i], TTarget[i]));
            trans.Add(tr.ToArray());
            var cl = new List<(int, int)>();
            for (int i = CallStart[s]; i < CallStart[s + 1]; i++)
                if (live[CallReturn[i]] && live[RuleStart[CallRule[i]]]) cl.Add((CallRule[i], CallReturn[i]));
            calls.Add(cl.ToArray());
        }
        SetEdges(trans, calls);
        Root = 0;
    }
}
