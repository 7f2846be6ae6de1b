// The pushdown automaton over the rule DFAs: a stack is a list of DFA states (the top one reads bytes, the
// others are where each called rule returns to), a configuration is the set of stacks alive after the bytes
// read so far. Stacks are hash-consed into nodes and configurations interned, and each configuration caches its
// successor per byte, so a byte already seen in a configuration costs one array read. Not thread-safe: one per
// matcher (and one per grammar, under a lock, for the precomputed token sets).
namespace R1Sharp.Grammar;

internal sealed class PdaContext
{
    /// <summary>The parent of a bottom frame: popping it completes the grammar.</summary>
    public const int Bottom = -1;
    /// <summary>The parent of a frame being precomputed alone: popping it marks the configuration Exited.</summary>
    public const int Sentinel = -2;
    /// <summary>The configuration with no stacks.</summary>
    public const int Dead = 0;

    private readonly GrammarAutomaton _g;
    private readonly List<int> _nodeState = [], _nodeParent = [];
    private readonly Dictionary<long, int> _nodes = new();
    private readonly List<Config> _configs = [];
    private readonly Dictionary<Config, int> _configIds = new(ConfigComparer.Instance);
    private readonly Dictionary<int, int> _exitConfig = new();
    // successor of configuration k by byte b at [k * 256 + b] (-1 unknown), and whether k is Exited: flat arrays that
    // a trie walk reads directly (Transitions, ExitedFlags), re-read after a Step that may have grown them
    private int[] _trans = [];
    private bool[] _exitedOf = [];

    // scratch for one closure
    private readonly HashSet<int> _tops = [];
    private readonly HashSet<long> _visited = [];
    private bool _accepting, _exited;

    public sealed class Config
    {
        public required int[] Tops;       // node ids, sorted
        public bool Accepting;            // a stack emptied: the grammar can end here
        public bool Exited;               // a frame popped into the Sentinel
        public int Hash;
        public bool IsDead => Tops.Length == 0 && !Accepting && !Exited;
    }

    public PdaContext(GrammarAutomaton g)
    {
        _g = g;
        Intern([], false, false); // Dead = 0
    }

    public GrammarAutomaton Automaton => _g;
    public Config this[int id] => _configs[id];
    public int NodeState(int node) => _nodeState[node];
    public int NodeParent(int node) => _nodeParent[node];
    public int ConfigCount => _configs.Count;
    /// <summary>Known successors: configuration k, byte b at [k * 256 + b], -1 where <see cref="Step"/> has not been asked yet.</summary>
    public int[] Transitions => _trans;
    /// <summary>Whether configuration k is Exited, at [k].</summary>
    public bool[] ExitedFlags => _exitedOf;

    public int Node(int state, int parent)
    {
        long key = ((long)state << 32) | (uint)parent;
        if (_nodes.TryGetValue(key, out int id)) return id;
        id = _nodeState.Count;
        _nodeState.Add(state);
        _nodeParent.Add(parent);
        _nodes[key] = id;
        return id;
    }

    /// <summary>The configuration at the start of the grammar.</summary>
    public int Start()
    {
        Begin();
        Close(_g.RuleStart[_g.Root], Bottom);
        return Finish();
    }

    /// <summary>A configuration holding the one top node (state, Sentinel): the frame read alone.</summary>
    public int Alone(int state) => Intern([Node(state, Sentinel)], false, false);

    /// <summary>The configuration after popping the frame of top node <paramref name="node"/>.</summary>
    public int ExitOf(int node)
    {
        int parent = _nodeParent[node];
        if (_exitConfig.TryGetValue(parent, out int c)) return c;
        Begin();
        Pop(parent);
        c = Finish();
        _exitConfig[parent] = c;
        return c;
    }

    /// <summary>The configuration after byte <paramref name="b"/>.</summary>
    public int Step(int config, byte b)
    {
        int known = _trans[(config << 8) | b];
        if (known >= 0) return known;
        var c = _configs[config];
        int result;
        if (c.Tops.Length == 0) result = Dead;
        else
        {
            Begin();
            foreach (int node in c.Tops)
            {
                int t = _g.Next(_nodeState[node], b);
                if (t >= 0) Close(t, _nodeParent[node]);
            }
            result = Finish();
        }
        _trans[(config << 8) | b] = result;
        return result;
    }

    /// <summary>The configuration after the bytes, or Dead.</summary>
    public int Run(int config, ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            config = Step(config, b);
            if (config == Dead) return Dead;
        }
        return config;
    }

    private void Begin()
    {
        _tops.Clear();
        _visited.Clear();
        _accepting = _exited = false;
    }

    private int Finish()
    {
        int[] tops = [.. _tops];
        Array.Sort(tops);
        return Intern(tops, _accepting, _exited);
    }

    // Expands DFA state 'state' with continuation 'parent' into top nodes: its byte edges, its calls, its end.
    private void Close(int state, int parent)
    {
        if (!_visited.Add(((long)state << 32) | (uint)parent)) return;
        if (_g.HasBytes(state)) _tops.Add(Node(state, parent));
        for (int i = _g.CallStart[state], e = _g.CallStart[state + 1]; i < e; i++)
        {
            int ret = _g.CallReturn[i];
            int p = _g.TrivialFinal[ret] ? parent : Node(ret, parent);
            Close(_g.RuleStart[_g.CallRule[i]], p);
        }
        if (_g.Accepting[state]) Pop(parent);
    }

    private void Pop(int parent)
    {
        if (parent == Bottom) _accepting = true;
        else if (parent == Sentinel) _exited = true;
        else Close(_nodeState[parent], _nodeParent[parent]);
    }

    private int Intern(int[] tops, bool accepting, bool exited)
    {
        var probe = new Config { Tops = tops, Accepting = accepting, Exited = exited };
        int h = accepting ? 17 : 3;
        if (exited) h = h * 31 + 5;
        foreach (int t in tops) h = h * 16777619 ^ t;
        probe.Hash = h;
        if (_configIds.TryGetValue(probe, out int id)) return id;
        id = _configs.Count;
        _configs.Add(probe);
        _configIds[probe] = id;
        if (_exitedOf.Length <= id)
        {
            int old = _exitedOf.Length, grown = Math.Max(64, old * 2);
            Array.Resize(ref _exitedOf, grown);
            Array.Resize(ref _trans, grown << 8);
            _trans.AsSpan(old << 8).Fill(-1);
        }
        _exitedOf[id] = exited;
        return id;
    }

    /// <summary>The stacks of a configuration as lists of DFA states, top first (to move it into another context).</summary>
    public (List<int[]> Stacks, bool Accepting) Export(int config)
    {
        var c = _configs[config];
        var stacks = new List<int[]>();
        foreach (int top in c.Tops)
        {
            var s = new List<int>();
            for (int n = top; n >= 0; n = _nodeParent[n]) s.Add(_nodeState[n]);
            stacks.Add([.. s]);
        }
        return (stacks, c.Accepting);
    }

    public int Import((List<int[]> Stacks, bool Accepting) e)
    {
        var tops = new int[e.Stacks.Count];
        for (int i = 0; i < tops.Length; i++)
        {
            int node = Bottom;
            int[] s = e.Stacks[i];
            for (int k = s.Length - 1; k >= 0; k--) node = Node(s[k], node);
            tops[i] = node;
        }
        Array.Sort(tops);
        return Intern(tops, e.Accepting, false);
    }

    private sealed class ConfigComparer : IEqualityComparer<Config>
    {
        public static readonly ConfigComparer Instance = new();
        public bool Equals(Config? a, Config? b) =>
            a!.Hash == b!.Hash && a.Accepting == b.Accepting && a.Exited == b.Exited && a.Tops.AsSpan().SequenceEqual(b.Tops);
        public int GetHashCode(Config c) => c.Hash;
    }
}
