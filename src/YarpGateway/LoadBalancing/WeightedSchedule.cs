using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// The smooth weighted round-robin order (nginx's algorithm) for one set of available destinations,
/// computed once when that set or its weights change, so that picking is an index into an array.
/// With weights 5/1/1 the order is a a b a c a a, never a burst of five to the heaviest.
/// </summary>
internal sealed class WeightedSchedule
{
    /// <summary>Longest order kept; larger weight sums are scaled down proportionally to fit.</summary>
    internal const int MaxLength = 1 << 16;

    private long _cursor = -1;
    private long _narrowedCursor = -1;

    private WeightedSchedule(ClusterModel? model, IReadOnlyList<DestinationState> destinations, int[] weights, int[] order)
    {
        Model = model;
        Destinations = destinations;
        Weights = weights;
        Order = order;
    }

    /// <summary>The cluster model this was computed for; a config change replaces it.</summary>
    public ClusterModel? Model { get; }

    /// <summary>The available destinations list this was computed for; a health change replaces it.</summary>
    public IReadOnlyList<DestinationState> Destinations { get; }

    /// <summary>Weights aligned with <see cref="Destinations"/>.</summary>
    public int[] Weights { get; }

    /// <summary>Indexes into <see cref="Destinations"/>, one cycle of the smooth order; empty when every weight is 0.</summary>
    public int[] Order { get; }

    public bool IsFor(ClusterState cluster, IReadOnlyList<DestinationState> destinations)
        => ReferenceEquals(Destinations, destinations) && ReferenceEquals(Model, cluster.Model);

    /// <summary>The next destination index in the smooth order, or -1 when all are drained. Lock-free.</summary>
    public int Next()
    {
        var order = Order;
        if (order.Length == 0)
        {
            return -1;
        }

        var position = (ulong)Interlocked.Increment(ref _cursor);
        return order[(int)(position % (ulong)order.Length)];
    }

    /// <summary>
    /// The next destination in the smooth order that is in <paramref name="subset"/> (a retry's list:
    /// this schedule's minus what failed), or null. Uses a cursor of its own, so that retries neither
    /// move the order every first attempt follows nor all land on one destination: over many retries
    /// the subset's destinations share them by weight.
    /// </summary>
    public DestinationState? NextWithin(IReadOnlyList<DestinationState> subset)
    {
        var order = Order;
        for (var step = 0; step < order.Length; step++)
        {
            var position = (ulong)Interlocked.Increment(ref _narrowedCursor);
            var candidate = Destinations[order[(int)(position % (ulong)order.Length)]];
            if (IndexOf(subset, candidate) >= 0)
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>True when every destination of <paramref name="subset"/> is one of this schedule's.</summary>
    public bool ContainsAll(IReadOnlyList<DestinationState> subset)
    {
        foreach (var destination in subset)
        {
            if (IndexOf(Destinations, destination) < 0)
            {
                return false;
            }
        }

        return true;
    }

    internal static int IndexOf(IReadOnlyList<DestinationState> list, DestinationState destination)
    {
        for (var i = 0; i < list.Count; i++)
        {
            if (ReferenceEquals(list[i], destination))
            {
                return i;
            }
        }

        return -1;
    }

    public static WeightedSchedule Create(ClusterModel? model, IReadOnlyList<DestinationState> destinations)
    {
        var weights = new int[destinations.Count];
        for (var i = 0; i < weights.Length; i++)
        {
            weights[i] = DestinationWeight.Of(destinations[i]);
        }

        return new WeightedSchedule(model, destinations, weights, BuildOrder(weights));
    }

    /// <summary>One full cycle of smooth weighted round robin over <paramref name="weights"/>.</summary>
    internal static int[] BuildOrder(IReadOnlyList<int> weights)
    {
        var reduced = Reduce(weights);
        var total = 0;
        foreach (var w in reduced)
        {
            total += w;
        }

        var order = new int[total];
        var current = new long[reduced.Length];
        for (var step = 0; step < total; step++)
        {
            var best = -1;
            for (var i = 0; i < reduced.Length; i++)
            {
                if (reduced[i] == 0)
                {
                    continue;
                }

                current[i] += reduced[i];
                if (best < 0 || current[i] > current[best])
                {
                    best = i;
                }
            }

            current[best] -= total;
            order[step] = best;
        }

        return order;
    }

    // Divides by the greatest common divisor (5/5 -> 1/1) and, if the cycle would still exceed
    // MaxLength, scales weights down proportionally (non-zero weights stay at least 1).
    private static int[] Reduce(IReadOnlyList<int> weights)
    {
        var gcd = 0;
        long sum = 0;
        foreach (var w in weights)
        {
            gcd = Gcd(gcd, w);
            sum += w;
        }

        var reduced = new int[weights.Count];
        if (gcd == 0)
        {
            return reduced;
        }

        var scale = sum / gcd > MaxLength ? (double)MaxLength / sum : 1.0 / gcd;
        for (var i = 0; i < reduced.Length; i++)
        {
            reduced[i] = weights[i] == 0 ? 0 : Math.Max(1, (int)(weights[i] * scale));
        }

        return reduced;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }
}
