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

    [Fact]
    public void ConnectTimeout_IsAConnectTimeout()
        => Assert.Equal(AttemptFailure.ConnectTimeout, RetryAttempt.ClassifyTransport(
            new TaskCanceledException("The request was canceled", new TimeoutException("A connection could not be established within the configured ConnectTimeout."))));
}
