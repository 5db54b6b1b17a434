using System.Net.Http;
using System.Net.Sockets;
using YarpGateway.Resilience;

namespace YarpGateway.Tests.Resilience;

/// <summary>
/// How a transport error is classified: a failure before any connection (refused, unreachable, a name that does not
/// resolve) is a connect failure, which any request may be retried on (nothing was sent); a connection lost
/// after connecting is a reset, retried only for requests that can be sent again.
/// </summary>
public sealed class RetryAttemptClassifyTransportTests
{
    [Fact]
    public void RefusedConnection_IsAConnectFailure()
        => Assert.Equal(AttemptFailure.ConnectFailure, RetryAttempt.ClassifyTransport(
            new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (127.0.0.1:1)", new SocketException((int)SocketError.ConnectionRefused))));

    [Theory]
    [InlineData(SocketError.HostNotFound)] // the name does not exist
    [InlineData(SocketError.TryAgain)]     // no DNS server answered
    public void NameThatDoesNotResolve_IsAConnectFailure(SocketError socketError)
        => Assert.Equal(AttemptFailure.ConnectFailure, RetryAttempt.ClassifyTransport(
            new HttpRequestException(HttpRequestError.NameResolutionError, "Name or service not known (no-such-host.invalid:8080)", new SocketException((int)socketError))));

    [Fact]
    public void ConnectionLostAfterConnecting_IsAReset()
        => Assert.Equal(AttemptFailure.ConnectionReset, RetryAttempt.ClassifyTransport(
            new HttpRequestException(HttpRequestError.ResponseEnded, "The response ended prematurely.", new IOException("reset"))));

    /// <summary>
    /// What SocketsHttpHandler gives the requests that waited for a new HTTP/2 connection whose handshake the destination
    /// did not complete (measured: 2 of 80 requests to a destination that resets every connection), next to the handshake's
    /// own error for the request that opened it. Neither reached the destination. A request HttpClient could not send (a
    /// header value it cannot encode: the same error, HttpRequestError.Unknown, no inner exception) stays not retried.
    /// </summary>
    [Fact]
    public void AWaiterForAnHttp2ConnectionThatFailedItsHandshake_IsAConnectFailure()
    {
        Assert.Equal(AttemptFailure.ConnectFailure, RetryAttempt.ClassifyTransport(
            new HttpRequestException("An HTTP/2 connection could not be established because the server did not complete the HTTP/2 handshake.")));
        Assert.Equal(AttemptFailure.ConnectionReset, RetryAttempt.ClassifyTransport(
            new HttpIOException(HttpRequestError.InvalidResponse, "An HTTP/2 connection could not be established because the server did not complete the HTTP/2 handshake. (InvalidResponse)", new IOException("reset"))));
        Assert.Equal(AttemptFailure.Other, RetryAttempt.ClassifyTransport(
            new HttpRequestException("Request headers must contain only ASCII characters.")));
    }

    [Fact]
    public void ConnectTimeout_IsAConnectTimeout()
        => Assert.Equal(AttemptFailure.ConnectTimeout, RetryAttempt.ClassifyTransport(
            new TaskCanceledException("The request was canceled", new TimeoutException("A connection could not be established within the configured ConnectTimeout."))));
}
