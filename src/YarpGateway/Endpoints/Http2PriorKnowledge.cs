using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace YarpGateway.Endpoints;

/// <summary>
/// Serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one cleartext port, as Envoy does.
/// Kestrel picks HTTP/2 on an Http1AndHttp2 endpoint only through TLS ALPN; this connection
/// middleware reads, without consuming, the first bytes of each connection, and when they are the
/// HTTP/2 connection preface it tells Kestrel "h2" through the ALPN feature. Kestrel's
/// <c>AllowAlternateSchemes</c> then takes the scheme from the request, and
/// <see cref="IsCleartextHttp2"/> lets the pipeline refuse a request that claims https.
/// </summary>
internal static class Http2PriorKnowledge
{
    private static readonly object Key = new();

    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <param name="firstBytesTimeout">How long a connection may take to send enough bytes to decide.</param>
    /// <param name="batchSends">Whether HTTP/2 connections send through <see cref="Http2SendBatching"/> (Kestrel runs on the socket threads).</param>
    /// <remarks>
    /// Connection admission has usually waited for the first bytes already, so the decision is made on
    /// them at once, and a connection that needs nothing more from here (HTTP/1.1, or HTTP/2 without
    /// batching) goes on without a frame of this middleware's held for its whole life (160 bytes per
    /// idle WebSocket, measured).
    /// </remarks>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(TimeSpan firstBytesTimeout, bool batchSends) => next => connection =>
        TryDecide(connection.Transport.Input) switch
        {
            false => next(connection),
            true => Http2Async(next, connection, batchSends),
            null => DecideAsync(next, connection, firstBytesTimeout, batchSends),
        };

    private static async Task DecideAsync(ConnectionDelegate next, ConnectionContext connection, TimeSpan firstBytesTimeout, bool batchSends)
    {
        bool isHttp2;
        var closeRequested = ConnectionCloseRequest.Token(connection);
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closeRequested))
        {
            timeout.CancelAfter(firstBytesTimeout);
            try
            {
                isHttp2 = await IsPrefaceAsync(connection.Transport.Input, timeout.Token);
            }
            catch (OperationCanceledException) when (closeRequested.IsCancellationRequested)
            {
                ConnectionCloseRequest.Abort(connection);
                return;
            }
            catch (OperationCanceledException)
            {
                // The client sent no complete preface or request line in time (or went away).
                connection.Abort(new ConnectionAbortedException("No HTTP request line or HTTP/2 preface within the request headers timeout."));
                return;
            }
        }

        await (isHttp2 ? Http2Async(next, connection, batchSends) : next(connection));
    }

    private static Task Http2Async(ConnectionDelegate next, ConnectionContext connection, bool batchSends)
    {
        connection.Features.Set<ITlsConnectionFeature>(CleartextMarker.Instance);
        connection.Features.Set<ITlsApplicationProtocolFeature>(CleartextMarker.Instance);
        connection.Items[Key] = true;
        return batchSends ? BatchedAsync(next, connection, Http2SendBatching.Install(connection)) : next(connection);

        static async Task BatchedAsync(ConnectionDelegate next, ConnectionContext connection, Http2SendBatching batching)
        {
            try
            {
                await next(connection);
            }
            finally
            {
                await batching.CompleteAsync();
            }
        }
    }

    /// <summary>
    /// For a cleartext endpoint that serves HTTP/2 only, where Kestrel speaks h2c itself and nothing
    /// is sniffed: marks every connection as cleartext HTTP/2, so that a request claiming https is
    /// refused there too (<see cref="IsCleartextHttp2"/>), and shutdown's GOAWAY and heartbeat find it.
    /// </summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Http2OnlyMarker => next => connection =>
    {
        connection.Items[Key] = true;
        return next(connection);
    };

    /// <summary>
    /// True for a connection that speaks HTTP/2: switched by this middleware, or negotiated through TLS ALPN. False
    /// for a TLS connection whose handshake has not finished (or failed): it has no protocol yet, and Kestrel's
    /// feature throws when asked.
    /// </summary>
    public static bool IsHttp2(ConnectionContext connection)
    {
        if (connection.Items.ContainsKey(Key))
        {
            return true;
        }

        try
        {
            return connection.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol.Span.SequenceEqual(System.Net.Security.SslApplicationProtocol.Http2.Protocol.Span) == true;
        }
        catch (InvalidOperationException)
        {
            return false; // SslStream: "only allowed using a successfully authenticated context"
        }
    }

    /// <summary>
    /// True for an HTTP/2 request whose <c>:scheme</c> is not its connection's: https over cleartext,
    /// http over TLS. Kestrel's <c>AllowAlternateSchemes</c> is on (h2c needs it, see the class), so
    /// Kestrel no longer refuses these itself, and the scheme would reach the backend as
    /// <c>X-Forwarded-Proto</c>. HTTP/1.1's scheme comes from the transport; nothing to check there.
    /// </summary>
    public static bool ClaimsWrongScheme(HttpContext context)
    {
        if (!HttpProtocol.IsHttp2(context.Request.Protocol))
        {
            return false;
        }

        var transport = IsCleartextHttp2(context) ? Uri.UriSchemeHttp
            : context.Features.Get<Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature>() is not null ? Uri.UriSchemeHttps
            : null;
        return transport is not null && !string.Equals(context.Request.Scheme, transport, StringComparison.Ordinal);
    }

    /// <summary>True for requests on a connection this middleware switched to HTTP/2 (or marked, on an HTTP/2-only cleartext endpoint).</summary>
    public static bool IsCleartextHttp2(HttpContext context)
        => context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionItemsFeature>()?.Items.ContainsKey(Key) == true;

    /// <summary>
    /// The decision from the bytes already buffered, or null when they are a prefix of the preface (or
    /// none came yet). Nothing is consumed or examined, so the next read returns them at once.
    /// </summary>
    internal static bool? TryDecide(PipeReader input)
    {
        if (!input.TryRead(out var result))
        {
            return null;
        }

        var decision = Match(result.Buffer) ?? (result.IsCompleted ? false : null);
        input.AdvanceTo(result.Buffer.Start);
        return decision;
    }

    /// <summary>
    /// Reads until the buffered bytes either diverge from the preface or contain all of it, and leaves
    /// every byte unconsumed for Kestrel. Most connections decide on their first read.
    /// </summary>
    internal static async ValueTask<bool> IsPrefaceAsync(PipeReader input, CancellationToken cancellationToken)
    {
        long previouslyExamined = 0;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var decision = Match(buffer);
            if (decision is not null || result.IsCompleted)
            {
                // Nothing consumed; mark as examined only what earlier reads examined, so that
                // Kestrel's first read returns at once with the bytes already here.
                input.AdvanceTo(buffer.Start, buffer.GetPosition(previouslyExamined));
                return decision == true;
            }

            previouslyExamined = buffer.Length;
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    // true: the preface; false: not the preface; null: a prefix of it, need more bytes.
    private static bool? Match(ReadOnlySequence<byte> buffer)
    {
        var length = (int)Math.Min(buffer.Length, Preface.Length);
        Span<byte> head = stackalloc byte[24];
        buffer.Slice(0, length).CopyTo(head);
        if (!Preface[..length].SequenceEqual(head[..length]))
        {
            return false;
        }

        return length == Preface.Length ? true : null;
    }

    /// <summary>Stands in for TLS so that Kestrel selects HTTP/2; there is no certificate.</summary>
    private sealed class CleartextMarker : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public static readonly CleartextMarker Instance = new();

        public ReadOnlyMemory<byte> ApplicationProtocol => System.Net.Security.SslApplicationProtocol.Http2.Protocol;

        public X509Certificate2? ClientCertificate
        {
            get => null;
            set { }
        }

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);
    }
}
