// What ggml's IQ quantizers search in (iq2xs_init_impl, iq3xs_init_impl): each grid with its points as coordinates
// 2l + 1, a map from every packed level vector to its grid index, and for a vector not on the grid the grid points
// nearest to it: all points at the nwant smallest squared distances, ordered by (distance, index) as ggml's qsort
// with its (distance, index) comparator leaves them. Built once per grid, on first use.
using System.Runtime.CompilerServices;

namespace R1Sharp.Kernels.Quants;

internal sealed class IqGridSearch
{
    private static readonly Lazy<IqGridSearch>[] s_byKind = Enum.GetValues<GridKind>()
        .Select(k => new Lazy<IqGridSearch>(() => new IqGridSearch(k))).ToArray();

    public static IqGridSearch Get(GridKind kind) => s_byKind[(int)kind].Value;

    /// <summary>Coordinates per point (8 for IQ1/IQ2, 4 for IQ3).</summary>
    public int Dims { get; }

    /// <summary>Points × <see cref="Dims"/> coordinates 2l + 1.</summary>
    private readonly sbyte[] _grid;

    /// <summary>Packed level vector → its grid index (≥ 0), or −(offset + 1) of its neighbour list in <see cref="_neighbours"/>.</summary>
    private readonly int[] _map;

    /// <summary>Neighbour lists: a count, then that many grid indices.</summary>
    private readonly ushort[] _neighbours;

    private readonly int _bits;

    private IqGridSearch(GridKind kind)
    {
        ReadOnlySpan<ushort> points = IqGrids.Points(kind);
        bool three = kind is GridKind.Iq3Xxs or GridKind.Iq3S;
        Dims = three ? 4 : 8;
        _bits = three ? 3 : 2;
        int nwant = kind switch
        {
            GridKind.Iq1S => 3,
            GridKind.Iq2S => 1,
            GridKind.Iq3S => 3,
            _ => 2,
        };
        // ggml's map sizes: every vector of levels up to 2 (2-bit, 8 coordinates) or up to 7 (3-bit, 4)
        int mapSize = three ? 4096 : 43692;
        int n = points.Length, dims = Dims, mask = (1 << _bits) - 1;

        _grid = new sbyte[n * dims];
        for (int k = 0; k < n; k++)
            for (int i = 0; i < dims; i++) _grid[k * dims + i] = (sbyte)(2 * ((points[k] >> (_bits * i)) & mask) + 1);
        _map = new int[mapSize];
        Array.Fill(_map, -1);
        for (int k = 0; k < n; k++) _map[points[k]] = k;

        var lists = new ushort[mapSize][];
        var grid = _grid;
        int bits = _bits;
        var map = _map;
        Parallel.For(0, mapSize, () => new int[n], (i, _, d2) =>
        {
            if (map[i] >= 0) return d2;
            Span<int> pos = stackalloc int[8];
            for (int k = 0; k < dims; k++) pos[k] = 2 * ((i >> (bits * k)) & mask) + 1;
            int maxD = 0;
            for (int j = 0; j < n; j++)
            {
                int s = 0;
                for (int k = 0; k < dims; k++)
                {
                    int diff = grid[j * dims + k] - pos[k];
                    s += diff * diff;
                }
                d2[j] = s;
                maxD = Math.Max(maxD, s);
            }
            // the nwant smallest distinct distances, then the points at them in (distance, index) order
            Span<int> wanted = stackalloc int[3];
            int have = 0, below = -1;
            while (have < nwant)
            {
                int next = int.MaxValue;
                for (int j = 0; j < n; j++) if (d2[j] > below && d2[j] < next) next = d2[j];
                if (next == int.MaxValue) break;
                wanted[have++] = below = next;
            }
            var list = new List<ushort>();
            for (int h = 0; h < have; h++)
                for (int j = 0; j < n; j++) if (d2[j] == wanted[h]) list.Add((ushort)j);
            lists[i] = [.. list];
            return d2;
        }, _ => { });

        int total = 0;
        foreach (var l in lists) if (l is not null) total += 1 + l.Length;
        _neighbours = new ushort[total];
        int at = 0;
        for (int i = 0; i < mapSize; i++)
        {
            if (lists[i] is not { } l) continue;
            _map[i] = -(at + 1);
            _neighbours[at++] = (ushort)l.Length;
            l.CopyTo(_neighbours, at);
            at += l.Length;
        }
    }

    /// <summary>Coordinate i (2l + 1) of grid point g.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Coord(int g, int i) => _grid[g * Dims + i];

    /// <summary>The grid index of a packed level vector, or −1 when it is not on the grid.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int IndexOf(int packed) => Math.Max(_map[packed], -1);

    /// <summary>The packed levels of <paramref name="L"/> (one level per coordinate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Pack(ReadOnlySpan<sbyte> L)
    {
        int u = 0;
        for (int i = 0; i < Dims; i++) u |= L[i] << (_bits * i);
        return u;
    }

    /// <summary>The neighbour list of a packed level vector that is not on the grid.</summary>
    public ReadOnlySpan<ushort> Neighbours(int packed)
    {
        int at = -_map[packed] - 1;
        return _neighbours.AsSpan(at + 1, _neighbours[at]);
    }

    /// <summary>
    /// ggml's iq2_find_best_neighbour / iq3_find_best_neighbour: among the neighbours of L (off the grid), the point
    /// with the smallest Σ w·(scale·q − x)²; its levels into L, its index returned.
    /// </summary>
    public int BestNeighbour(ReadOnlySpan<float> xval, ReadOnlySpan<float> weight, float scale, Span<sbyte> L)
    {
        float best = float.MaxValue;
        int index = -1;
        foreach (ushort g in Neighbours(Pack(L)))
        {
            float d2 = 0;
            for (int i = 0; i < Dims; i++)
            {
                float q = Coord(g, i);
                float diff = scale * q - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if (d2 < best)
            {
                best = d2;
                index = g;
            }
        }
        if (index < 0) throw new InvalidOperationException("no grid point near the values (non-finite input?)");
        SetLevels(index, L);
        return index;
    }

    /// <summary>
    /// ggml's iq1_find_best_neighbour2: among the neighbours of L, the point whose levels, as the values xg (the three
    /// IQ1 values with this sub-block's shift), are nearest in Σ w·(scale·xg − x)².
    /// </summary>
    public int BestNeighbourIq1(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float scale, ReadOnlySpan<float> xg, Span<sbyte> L)
    {
        float best = float.MaxValue;
        int index = -1;
        foreach (ushort g in Neighbours(Pack(L)))
        {
            float d2 = 0;
            for (int i = 0; i < 8; i++)
            {
                float q = xg[(Coord(g, i) - 1) / 2];
                float w = weight[i];
                float diff = scale * q - x[i];
                d2 += w * diff * diff;
            }
            if (d2 < best)
            {
                best = d2;
                index = g;
            }
        }
        if (index < 0) throw new InvalidOperationException("no grid point near the values (non-finite input?)");
        SetLevels(index, L);
        return index;
    }

    /// <summary>The levels (q − 1)/2 of grid point g into L.</summary>
    public void SetLevels(int g, Span<sbyte> L)
    {
        for (int i = 0; i < Dims; i++) L[i] = (sbyte)((Coord(g, i) - 1) / 2);
    }
}
