using System.Net;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

public class UpgradedContentTests
{
    [Fact]
    public async Task OpeningTheUpgradedStream_ReleasesTheResponsesAndRequestsHeads_AndTheClientsRequestHeadersAndRouteValues_NotBefore()
    {
        var client = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        client.Request.Headers.Cookie = "session=" + new string('x', 1000); // what a browser's handshake brings
        client.Request.Headers.UserAgent = "Mozilla/5.0";
        client.Request.Headers["X-Request-ID"] = "ws-7f3a"; // kept, for the lines about this WebSocket
        client.Request.Headers.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; // and so is this
        client.Request.RouteValues["rest"] = "ws"; // routing's
        var relay = WebSocketRelayPolicyTests.CreateRelay(SlowClientPolicy.Backpressure, client);
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://b/ws");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "10.0.0.1");
        var backendsPhrase = new string("Switching Protocols".AsSpan()); // a string of the response's own, as a parsed one is
        using var response = new HttpResponseMessage(HttpStatusCode.SwitchingProtocols) { ReasonPhrase = backendsPhrase, RequestMessage = request };
        response.Headers.TryAddWithoutValidation("Upgrade", "websocket");
        var inner = new StreamContent(new MemoryStream());
        inner.Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
        response.Content = UpgradedContent.ForRelay(inner, relay, response);

        // Until YARP opens the stream (after the 101 went out), the head is there for its copy and the transforms.
        Assert.Single(response.Headers);
        Assert.Single(request.Headers);
        Assert.Equal(4, client.Request.Headers.Count);
        Assert.Single(client.Request.RouteValues);

        await using var stream = await response.Content.ReadAsStreamAsync();

        Assert.Empty(response.Headers);
        Assert.Empty(request.Headers);
        Assert.Empty(inner.Headers);
        Assert.Equal(["traceparent", "X-Request-ID"], client.Request.Headers.Keys.Order(StringComparer.OrdinalIgnoreCase)); // Kestrel would keep the client's for the connection's life
        Assert.Empty(client.Request.RouteValues); // and routing's
        Assert.NotSame(backendsPhrase, response.ReasonPhrase); // the status code's own phrase now
        Assert.Equal(HttpStatusCode.SwitchingProtocols, response.StatusCode);
    }

    [Fact]
    public async Task TheHandshakesCopyOfTheClientsHeaders_StandsInUntilTheStreamOpens_ThenKestrelsAreBackAndEmpty()
    {
        var client = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        client.Request.Headers.Cookie = "session=abc";
        client.Request.Headers.UserAgent = "Mozilla/5.0";
        var servers = client.Request.Headers;
        var relay = WebSocketRelayPolicyTests.CreateRelay(SlowClientPolicy.Backpressure, client);

        relay.StandInForClientRequestHead();

        // What YARP enumerates to build the backend's request: a copy, with every header.
        Assert.NotSame(servers, client.Request.Headers);
        Assert.Equal(["Cookie", "User-Agent"], client.Request.Headers.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("session=abc", client.Request.Headers.Cookie.ToString());

        using var request = new HttpRequestMessage(HttpMethod.Get, "http://b/ws");
        using var response = new HttpResponseMessage(HttpStatusCode.SwitchingProtocols) { RequestMessage = request };
        response.Content = UpgradedContent.ForRelay(new StreamContent(new MemoryStream()), relay, response);
        await using var stream = await response.Content.ReadAsStreamAsync();

        Assert.Same(servers, client.Request.Headers); // the server's own collection is back, the copy gone with the handshake
        Assert.Empty(servers);
    }
}
