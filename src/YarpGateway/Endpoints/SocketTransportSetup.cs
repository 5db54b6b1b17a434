using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace YarpGateway.Endpoints;

/// <summary>
/// Sets the listen backlog (<c>Gateway:Transport:Backlog</c>, longer than Kestrel's 512 by default),
/// creates the listening sockets through <see cref="ProxyListenQueue"/> (which keeps the Proxy
/// endpoint's to read their queue), sets Kestrel's write buffer per connection
/// (<c>Gateway:Transport:MaxWriteBufferSize</c>, smaller than Kestrel's 64 KiB by default) and what it
/// reads ahead of the application (<c>Gateway:Transport:MaxReadBufferSize</c>, 64 KiB, not 1 MiB), and
/// decides whether Kestrel runs request processing on the socket threads. With one CPU that saves a
/// thread hop per request (one socket thread does all the work, as one nginx worker does). With more
/// CPUs each connection stays on the socket thread it was assigned to, work cannot move to an idle
/// CPU, and a busy neighbour on one core doubled the p99 in the benchmark, so it stays off there.
/// With one CPU it also says when the runtime will be slow to optimize hot code
/// (<see cref="RuntimeDefaults.TieringDelaySingleProcMultiplier"/>).
/// </summary>
internal sealed partial class SocketTransportSetup(IOptions<TransportOptions> options, ProxyListenQueue listenQueue, ILogger<SocketTransportSetup> logger) : IConfigureOptions<SocketTransportOptions>
{
    public void Configure(SocketTransportOptions transport)
    {
        transport.CreateBoundListenSocket = listenQueue.CreateBoundListenSocket;

        // Kestrel's transport is built with the host, before UseGatewayAsync validates the options:
        // a value that does not bind is reported there, with every other error, and exits 1.
        bool? configured;
        try
        {
            configured = options.Value.InlineScheduling;
            // Out of range: reported with every other error at start.
            transport.MaxWriteBufferSize = options.Value.MaxWriteBufferSize is { } max and >= TransportOptions.MinWriteBufferSize and <= TransportOptions.MaxWriteBufferSizeLimit
                ? max
                : TransportOptions.DefaultWriteBufferSize;
            transport.MaxReadBufferSize = options.Value.MaxReadBufferSize is { } read and >= TransportOptions.MinReadBufferSize and <= TransportOptions.MaxWriteBufferSizeLimit
                ? read
                : TransportOptions.DefaultReadBufferSize;
            transport.Backlog = options.Value.Backlog is { } backlog and >= 1 and <= TransportOptions.MaxBacklog ? backlog : TransportOptions.DefaultBacklog;
        }
        catch (InvalidOperationException)
        {
            return;
        }

        var inline = PreferInlineScheduling(configured, Environment.ProcessorCount, RuntimeDefaults.InlineCompletionsEnabled());
        transport.UnsafePreferInlineScheduling = inline;
        Log.Scheduling(logger, inline ? "on the socket threads" : "on the thread pool", Environment.ProcessorCount, configured is null ? "default" : TransportOptions.SectionName + ":InlineScheduling");
        if (RuntimeDefaults.SlowTierUp(Environment.ProcessorCount, System.Runtime.CompilerServices.RuntimeFeature.IsDynamicCodeCompiled))
        {
            Log.SlowTierUp(logger, RuntimeDefaults.TieringDelaySingleProcMultiplier);
        }
    }

    /// <summary>The operator's setting if there is one; otherwise inline only with one CPU and inline socket completions.</summary>
    internal static bool PreferInlineScheduling(bool? configured, int processorCount, bool inlineCompletions)
        => configured ?? (processorCount == 1 && inlineCompletions);

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Requests are processed {Where} ({ProcessorCount} CPU(s); {Source}).", EventName = "TransportScheduling")]
        public static partial void Scheduling(ILogger logger, string where, int processorCount, string source);

        [LoggerMessage(2, LogLevel.Warning, "One CPU and {Variable} not set: the runtime optimizes hot code only after a second without new code, so under load the gateway runs unoptimized code for tens of seconds after it starts (a third to a half of its throughput). Set {Variable}=1 in the environment, as the container image does.", EventName = "SlowTierUp")]
        public static partial void SlowTierUp(ILogger logger, string variable);
    }
}
