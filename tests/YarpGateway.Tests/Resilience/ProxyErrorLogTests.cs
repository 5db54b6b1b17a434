using Microsoft.Extensions.Time.Testing;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using YarpGateway.Resilience;
using YarpGateway.Tests.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Resilience;

public class ProxyErrorLogTests
{
    private static readonly ClusterModel Cluster = new(new ClusterConfig { ClusterId = "c1" }, new HttpMessageInvoker(new SocketsHttpHandler()));

    private static DefaultHttpContext Failed(ForwarderError error, Exception? exception, int status)
    {
        var context = new DefaultHttpContext { Response = { StatusCode = status } };
        context.Features.Set<IForwarderErrorFeature>(new TestForwarderError(error, exception));
        return context;
    }

    private static IReverseProxyFeature Proxy() => new ReverseProxyFeature
    {
        Route = new RouteModel(new RouteConfig { RouteId = "r1", ClusterId = "c1" }, null, HttpTransformer.Empty),
        Cluster = Cluster,
        AllDestinations = [],
        AvailableDestinations = [],
        ProxiedDestination = new DestinationState("d1"),
    };

    private static (ProxyErrorLog Log, CapturingLoggerProvider Lines, FakeTimeProvider Clock) Create()
    {
        var lines = new CapturingLoggerProvider();
        var clock = new FakeTimeProvider();
        var factory = LoggerFactory.Create(builder => builder.AddProvider(lines).SetMinimumLevel(LogLevel.Debug));
        return (new ProxyErrorLog(TestMetrics.Resilience(), new YarpGateway.Telemetry.RequestId(SchedulerDelayProbeTests.ProbeOptions()), clock, factory.CreateLogger<ProxyErrorLog>()), lines, clock);
    }

    [Fact]
    public void EveryForwarderError_HasItsOwnTag()
    {
        var errors = Enum.GetValues<ForwarderError>().Where(e => e != ForwarderError.None).ToArray();
        var tags = errors.Select(ProxyErrorLog.TagOf).ToArray();

        Assert.DoesNotContain("other", tags);
        Assert.Equal(tags.Length, tags.Distinct().Count());
        Assert.All(tags, t => Assert.Matches("^[a-z_]+$", t));
    }

    [Theory]
    [InlineData(ForwarderError.Request, false)]
    [InlineData(ForwarderError.ResponseHeaders, false)]
    [InlineData(ForwarderError.NoAvailableDestinations, false)]
    [InlineData(ForwarderError.UpgradeResponseDestination, false)]
    [InlineData(ForwarderError.RequestCanceled, true)]
    [InlineData(ForwarderError.ResponseBodyClient, true)]
    [InlineData(ForwarderError.UpgradeRequestClient, true)]
    [InlineData(ForwarderError.UpgradeResponseCanceled, true)]
    public void ClientSideErrors_AreTheClientsGoingAwayOrFailing(ForwarderError error, bool clientSide)
        => Assert.Equal(clientSide, ProxyErrorLog.IsClientSide(error));

    [Theory]
    [InlineData(413, false, true)] // the backend's early answer, the client still there: YARP's cancelled copy, not a failure
    [InlineData(200, false, true)]
    [InlineData(413, true, false)] // the client went away: its error
    [InlineData(502, false, false)] // no answer from the backend
    public void ACancelledBodyCopy_AfterTheBackendsAnswer_IsTheAnswerBeforeTheBody(int status, bool clientGone, bool answer)
    {
        using var aborted = new CancellationTokenSource();
        var context = new DefaultHttpContext { RequestAborted = aborted.Token };
        context.Response.StatusCode = status;
        if (clientGone)
        {
            aborted.Cancel();
        }

        Assert.Equal(answer, ProxyErrorLog.IsAnswerBeforeTheBody(context, new TestForwarderError(ForwarderError.RequestBodyCanceled, new OperationCanceledException())));
    }

    [Fact]
    public void Describe_IsOneLine_WithEveryMessageDownTheChain()
    {
        var exception = new HttpRequestException("An error occurred while sending the request.", new IOException("Unable to read data.", new SocketException((int)SocketError.ConnectionReset)));

        var text = YarpGateway.Telemetry.ExceptionText.Describe(exception);

        Assert.Equal($"HttpRequestException: An error occurred while sending the request. <- IOException: Unable to read data. <- SocketException: {new SocketException((int)SocketError.ConnectionReset).Message}", text);
        Assert.DoesNotContain('\n', text);
        Assert.Equal("no exception", YarpGateway.Telemetry.ExceptionText.Describe(null));
        Assert.Equal("InvalidOperationException: Invalid Content-Length", YarpGateway.Telemetry.ExceptionText.Describe(new InvalidOperationException("Invalid Content-Length."))); // the line ends with its own period
    }

    [Fact]
    public void DestinationErrors_LogOneLineASecondPerClusterAndError_WithTheCountLeftOut()
    {
        var (log, lines, clock) = Create();
        var refused = new HttpRequestException("Connection refused (127.0.0.1:9)");

        for (var i = 0; i < 5; i++)
        {
            log.Record(Failed(ForwarderError.Request, refused, 502), Proxy());
        }

        var withId = Failed(ForwarderError.ResponseHeaders, null, 502);
        withId.Request.Headers["X-Request-ID"] = "4bf92f3577b34da6"; // the line names the request it is about
        log.Record(withId, Proxy()); // another error: its own line
        clock.Advance(TimeSpan.FromSeconds(1));
        log.Record(Failed(ForwarderError.Request, refused, 502), Proxy());

        Assert.Equal(
            [
                "Warning YarpGateway.Resilience.ProxyErrorLog[ProxyError] Proxy error request: route r1, cluster c1, destination d1, request id -, after 1 attempt(s); answered 502. HttpRequestException: Connection refused (127.0.0.1:9). 0 more like it in the last second.",
                "Warning YarpGateway.Resilience.ProxyErrorLog[ProxyError] Proxy error response_headers: route r1, cluster c1, destination d1, request id 4bf92f3577b34da6, after 1 attempt(s); answered 502. no exception. 0 more like it in the last second.",
                "Warning YarpGateway.Resilience.ProxyErrorLog[ProxyError] Proxy error request: route r1, cluster c1, destination d1, request id -, after 1 attempt(s); answered 502. HttpRequestException: Connection refused (127.0.0.1:9). 4 more like it in the last second.",
            ],
            lines.Lines);
    }

    [Fact]
    public void ClientSideErrorsAndTimeouts_LogNoWarning()
    {
        var (log, lines, _) = Create();

        log.Record(Failed(ForwarderError.UpgradeRequestClient, new IOException("reset"), 101), Proxy());
        log.Record(Failed(ForwarderError.RequestCanceled, new TaskCanceledException(), 502), Proxy());
        log.Record(Failed(ForwarderError.RequestTimedOut, new TaskCanceledException(), 504), Proxy()); // the retry middleware's line
        log.Record(new DefaultHttpContext(), Proxy()); // no error at all

        Assert.DoesNotContain(lines.Lines, l => l.StartsWith("Warning", StringComparison.Ordinal));
        Assert.Collection(
            lines.Lines,
            l => Assert.StartsWith("Debug YarpGateway.Resilience.ProxyErrorLog[ProxyClientError] Client-side proxy error upgrade_request_client: route r1, cluster c1, destination d1, request id -; status 101. IOException: reset.", l),
            l => Assert.StartsWith("Debug YarpGateway.Resilience.ProxyErrorLog[ProxyClientError] Client-side proxy error request_canceled:", l));
    }
}
