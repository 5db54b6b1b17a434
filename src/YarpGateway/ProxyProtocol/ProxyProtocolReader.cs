using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using YarpGateway.Endpoints;
using YarpGateway.Telemetry;

namespace YarpGateway.ProxyProtocol;

/// <summary>
/// With <see cref="ProxyProtocolOptions.Enabled"/>: reads the PROXY protocol header at the start of every connection to
/// the Proxy endpoint (before TLS, h2c sniffing and HTTP), takes the client's address from it as the connection's
/// remote address (so <c>X-Forwarded-For</c>, <c>X-Real-IP</c>, <c>ClientIp</c> rate limits, trusted forwarded
/// headers and logs see the client, not the load balancer), and hands the bytes after it on. A connection from a peer
/// outside <see cref="ProxyProtocolOptions.TrustedNetworks"/>, without a header, with a malformed one, or whose header
/// does not arrive within Kestrel's request headers timeout is closed, counted and logged (at most once a second per
/// reason).
/// </summary>
internal sealed partial class ProxyProtocolReader : IProxyConnectionMiddleware
{
    private readonly IPNetwork[] _trusted;
    private readonly bool _required;
    private readonly ProxyProtocolMetrics _metrics;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<ProxyProtocolReader> _logger;
    private readonly LogThrottle _throttle;

    public ProxyProtocolReader(IOptions<ProxyProtocolOptions> options, ProxyProtocolMetrics metrics, TimeProvider timeProvider, ILogger<ProxyProtocolReader> logger)
    {
        var trusted = new List<IPNetwork>();
        foreach (var text in options.Value.TrustedNetworks)
        {
            if (Configuration.OptionChecks.TryParseNetwork(text, out var network))
            {
                trusted.Add(network); // validated at start: every one parses
            }
        }

        _trusted = [.. trusted];
        _required = options.Value.Required;
        _metrics = metrics;
        _timeProvider = timeProvider;
        _logger = logger;
        _throttle = new LogThrottle(timeProvider, logger);
    }

    public ConnectionDelegate Wrap(ConnectionDelegate next, KestrelServerLimits limits) => connection => ReadThenRunAsync(connection, next, limits);

    // The connection keeps this small frame for its life; the header's reading has its own, gone once read.
    private async Task ReadThenRunAsync(ConnectionContext connection, ConnectionDelegate next, KestrelServerLimits limits)
    {
        if (await ReadHeaderAsync(connection, limits.RequestHeadersTimeout))
        {
            await next(connection);
        }
    }

    /// <summary>Reads and consumes the header, and sets the connection's remote address from it; false when the connection was closed instead.</summary>
    private async ValueTask<bool> ReadHeaderAsync(ConnectionContext connection, TimeSpan timeout)
    {
        var peer = connection.RemoteEndPoint as IPEndPoint;
        if (_trusted.Length > 0 && (peer is null || !IsTrusted(peer.Address)))
        {
            Refuse(connection, peer, ProxyProtocolRefusal.UntrustedPeer);
            return false;
        }

        // Connection admission waited for the first bytes, so the header is usually here already: no timer for it.
        var input = connection.Transport.Input;
        if (input.TryRead(out var ready))
        {
            var buffer = ready.Buffer;
            if (ProxyProtocolHeader.TryParse(buffer, out var header) == ProxyProtocolHeader.Result.Complete)
            {
                input.AdvanceTo(buffer.GetPosition(header.Length));
                UseSource(connection, header);
                return true;
            }

            input.AdvanceTo(buffer.Start); // read again below, with the timeout
        }

        var closeRequested = ConnectionCloseRequest.Token(connection);
        using var deadline = new CancellationTokenSource(timeout, _timeProvider);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, connection.ConnectionClosed, closeRequested);
        while (true)
        {
            System.IO.Pipelines.ReadResult read;
            try
            {
                read = await input.ReadAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                if (closeRequested.IsCancellationRequested)
                {
                    ConnectionCloseRequest.Abort(connection);
                }
                else if (deadline.IsCancellationRequested && !connection.ConnectionClosed.IsCancellationRequested)
                {
                    Refuse(connection, peer, ProxyProtocolRefusal.Timeout);
                }

                return false;
            }

            var buffer = read.Buffer;
            switch (ProxyProtocolHeader.TryParse(buffer, out var header))
            {
                case ProxyProtocolHeader.Result.Complete:
                    input.AdvanceTo(buffer.GetPosition(header.Length));
                    UseSource(connection, header);
                    return true;
                case ProxyProtocolHeader.Result.NeedMore when !read.IsCompleted:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                case ProxyProtocolHeader.Result.NeedMore:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    if (!buffer.IsEmpty)
                    {
                        Refuse(connection, peer, ProxyProtocolRefusal.Malformed); // the peer closed in the middle of a header
                    }

                    return false;
                case ProxyProtocolHeader.Result.Missing when !_required:
                    input.AdvanceTo(buffer.Start); // the client's own bytes, for Kestrel; the peer stands
                    return true;
                case var result:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    Refuse(connection, peer, result == ProxyProtocolHeader.Result.Missing ? ProxyProtocolRefusal.Missing : ProxyProtocolRefusal.Malformed);
                    return false;
            }
        }
    }

    private static void UseSource(ConnectionContext connection, ProxyProtocolHeader header)
    {
        if (header.Source is { } source)
        {
            connection.RemoteEndPoint = source;
        }
    }

    // The peer is in its IPv4 form already (ClientEndPoint runs first on a proxy connection).
    private bool IsTrusted(IPAddress address)
    {
        foreach (var network in _trusted)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    private void Refuse(ConnectionContext connection, IPEndPoint? peer, ProxyProtocolRefusal reason)
    {
        _metrics.Refused(reason);
        var tag = ProxyProtocolMetrics.Tag(reason);
        if (_throttle.ShouldLog(tag, out var suppressed, LogLevel.Warning))
        {
            Log.Refused(_logger, peer?.ToString() ?? "-", tag, suppressed, Advice(reason));
        }

        connection.Abort(new ConnectionAbortedException($"PROXY protocol: {tag}."));
    }

    private static string Advice(ProxyProtocolRefusal reason) => reason switch
    {
        ProxyProtocolRefusal.Missing => "the connection did not start with a PROXY protocol header; if every connection says so, the load balancer does not send it (turn it on there, or set Gateway:ProxyProtocol:Enabled to false)",
        ProxyProtocolRefusal.UntrustedPeer => "the peer is not in Gateway:ProxyProtocol:TrustedNetworks; if it is the load balancer, add its network",
        ProxyProtocolRefusal.Timeout => "no whole header within Kestrel's request headers timeout",
        _ => "the header does not follow the PROXY protocol (versions 1 and 2), or is longer than 4 KiB",
    };

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Closed a connection from {Peer} on the proxy endpoint: {Reason}, {Advice} ({Suppressed} more since the last line).", EventName = "ProxyProtocolRefused")]
        public static partial void Refused(ILogger logger, string peer, string reason, long suppressed, string advice);
    }
}
