namespace YarpGateway;

/// <summary>
/// Process-wide runtime settings the gateway ships with, applied before anything opens a socket.
/// Each was measured (docs/performance-history.md); an operator's own environment value always wins.
/// </summary>
internal static class RuntimeDefaults
{
    /// <summary>
    /// Socket completions run on the socket engine's thread instead of being queued to the thread
    /// pool: one context switch less per read and write. With the non-spinning pool (see the csproj)
    /// it took 17 % off the CPU per request on one core and 20 % on two. The runtime reads it once,
    /// from the environment only, when the first socket is used. Everything the gateway runs on
    /// those threads is asynchronous; blocking there would stall every socket of that engine.
    /// </summary>
    public const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>
    /// With one CPU the runtime waits ten times longer (1 s instead of 100 ms without a new method being
    /// compiled) before it starts optimizing hot code, and a busy gateway keeps compiling new methods:
    /// on one pinned core it served 16,000 to 23,000 requests a second for its first 28 s under load
    /// and 47,000 after; with this set to 1, 39,000 from the 5th second, and the same after
    /// (docs/performance-history.md). The runtime reads it from the environment only, at start, so it
    /// is set in the container image (deploy/Dockerfile), not here.
    /// </summary>
    public const string TieringDelaySingleProcMultiplier = "DOTNET_TC_DelaySingleProcMultiplier";

    /// <summary>
    /// Whether the runtime, with <paramref name="processorCount"/> CPUs, delays optimizing hot code tenfold (nothing set it).
    /// Never in a native AOT build (<paramref name="compilesAtRunTime"/> false: <c>RuntimeFeature.IsDynamicCodeCompiled</c>),
    /// whose code was all compiled, optimized, before it shipped.
    /// </summary>
    public static bool SlowTierUp(int processorCount, bool compilesAtRunTime)
        => compilesAtRunTime
            && processorCount == 1
            && Environment.GetEnvironmentVariable(TieringDelaySingleProcMultiplier) is null
            && Environment.GetEnvironmentVariable("COMPlus_TC_DelaySingleProcMultiplier") is null;

    /// <summary>Whether socket completions run inline, read as the runtime reads it ("1" or "true").</summary>
    public static bool InlineCompletionsEnabled()
        => Environment.GetEnvironmentVariable(InlineSocketCompletions) is { } value
            && (value == "1" || value.Equals("true", StringComparison.OrdinalIgnoreCase));

    public static void Apply()
    {
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
        }
    }
}
