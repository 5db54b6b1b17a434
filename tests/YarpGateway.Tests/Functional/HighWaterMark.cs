namespace YarpGateway.Tests.Functional;

/// <summary>The most of something seen at once, updated from many threads (tests that count what is in flight).</summary>
internal static class HighWaterMark
{
    /// <summary>Raises <paramref name="target"/> to <paramref name="value"/> if that is more, atomically.</summary>
    public static void Raise(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current && Interlocked.CompareExchange(ref target, value, current) is var seen && seen != current)
        {
            current = seen;
        }
    }
}
