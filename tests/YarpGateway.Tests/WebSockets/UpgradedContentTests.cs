using System.Net;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

public class UpgradedContentTests
{
    [Fact]
    public async Task OpeningTheGatedStream_ReleasesTheResponsesAndRequestsHeads_NotBefore()
    {
        var relay = WebSocketRelayPolicyTests.CreateRelay(SlowClientPolicy.Backpressure);
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://b/ws");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "10.0.0.1");
        var backendsPhrase = new string("Switching Protocols".AsSpan()); // a string of the response's own, as a parsed one is
        using var response = new HttpResponseMessage(HttpStatusCode.SwitchingProtocols) { ReasonPhrase = backendsPhrase, RequestMessage = request };
        response.Headers.TryAddWithoutValidation("Upgrade", "websocket");
        var inner = new StreamContent(new MemoryStream());
        inner.Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
        response.Content = UpgradedContent.Gated(inner, relay, response);

        // Until YARP opens the stream (after the 101 went out), the head is there for its copy and the transforms.
        Assert.Single(response.Headers);
        Assert.Single(request.Headers);

        await using var stream = await response.Content.ReadAsStreamAsync();

        Assert.Empty(response.Headers);
        Assert.Empty(request.Headers);
        Assert.Empty(inner.Headers);
        Assert.NotSame(backendsPhrase, response.ReasonPhrase); // the status code's own phrase now
        Assert.Equal(HttpStatusCode.SwitchingProtocols, response.StatusCode);
    }
}
