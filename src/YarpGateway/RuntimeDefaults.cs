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
