using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

public class RequestIdTests
{
    [Theory]
    [InlineData("5f0c1e2d9a8b4c7d8e6f5a4b3c2d1e0f", true)]
    [InlineData("req-42", true)]
    [InlineData("Root=1-67891233-abcdef012345678912345678", true)] // AWS load balancers' X-Amzn-Trace-Id form
    [InlineData("a@b:c/d+e=f_g.h", true)]
    [InlineData("", false)]
    [InlineData("a b", false)] // would split an access log's field
    [InlineData("a\"b", false)]
    [InlineData("a\nb", false)]
    [InlineData("é", false)]
    public void AnIdIsKept_WhenALogLineCarriesItAsItIs(string id, bool kept)
        => Assert.Equal(kept, RequestId.IsWellFormed(id));

    [Fact]
    public void AnIdIsKept_UpToItsMaximumLength()
    {
        Assert.True(RequestId.IsWellFormed(new string('a', RequestId.MaxLength)));
        Assert.False(RequestId.IsWellFormed(new string('a', RequestId.MaxLength + 1)));
    }

    [Fact]
    public void ANewId_Is32HexadecimalDigits_DifferentEachTime()
    {
        var ids = Enumerable.Range(0, 100).Select(_ => RequestId.New()).ToHashSet();
        Assert.Equal(100, ids.Count);
        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{32}$", id));
    }

    [Theory]
    [InlineData("", "Gateway:Telemetry:RequestIdHeader must be a header name (letters, digits and !#$%&'*+-.^_`|~ only); got ''.")]
    [InlineData("X Request Id", "Gateway:Telemetry:RequestIdHeader must be a header name (letters, digits and !#$%&'*+-.^_`|~ only); got 'X Request Id'.")]
    [InlineData("host", "Gateway:Telemetry:RequestIdHeader must not be host, which HTTP or the gateway gives a meaning of its own; X-Request-ID is the usual one.")]
    [InlineData("traceparent", "Gateway:Telemetry:RequestIdHeader must not be traceparent, which HTTP or the gateway gives a meaning of its own; X-Request-ID is the usual one.")]
    public void AHeaderThatCannotCarryTheId_IsNamed(string header, string error)
    {
        var result = new TelemetryOptionsValidator().Validate(null, new TelemetryOptions { RequestIdHeader = header });
        Assert.Contains(error, result.Failures!);
    }

    /// <summary>
    /// On: the backend gets an id, the client gets the same one back, and the access log's line has it; one a request
    /// brings is kept when well formed, replaced when not; the gateway's own answers (404, 502) carry one too, and a
    /// backend's own id does not reach the client beside the gateway's.
    /// </summary>
    [Fact]
    public async Task On_TheBackendTheClientAndTheAccessLogSeeTheSameId()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "RoundRobin", [(backend, null)]));
        config["ReverseProxy"]!["Routes"]!["dead"] = new JsonObject { ["ClusterId"] = "dead", ["Match"] = new JsonObject { ["Path"] = "/dead/{**rest}" } };
        config["ReverseProxy"]!["Clusters"]!["dead"] = new JsonObject
        {
            ["Destinations"] = new JsonObject { ["d1"] = new JsonObject { ["Address"] = $"http://127.0.0.1:{LoopbackPort.Unused()}/" } },
        };
        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true, "RequestId": true } }""");
        var output = new AccessLogTests.CapturedOutput();
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => AccessLogTests.CaptureAccessLog(services, output));
        using var client = gateway.CreateProxyClient();

        async Task<(HttpStatusCode Status, string[] Ids)> SendAsync(string path, params string[] sent)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            foreach (var id in sent)
            {
                request.Headers.TryAddWithoutValidation("X-Request-ID", id);
            }

            using var response = await client.SendAsync(request);
            return (response.StatusCode, response.Headers.TryGetValues("X-Request-ID", out var ids) ? [.. ids] : []);
        }

        string BackendSaw()
        {
            var seen = backend.RequestHeaders.Last();
            return seen.TryGetValue("X-Request-ID", out var id) ? id : "(none)";
        }

        var (status, made) = await SendAsync("/api/a");
        Assert.Equal(HttpStatusCode.OK, status);
        var id = Assert.Single(made);
        Assert.Matches("^[0-9a-f]{32}$", id);
        Assert.Equal(id, BackendSaw());

        (status, var kept) = await SendAsync("/api/b", "lb-7f3a");
        Assert.Equal(["lb-7f3a"], kept);
        Assert.Equal("lb-7f3a", BackendSaw());

        (_, var replaced) = await SendAsync("/api/c", "two words");
        Assert.Matches("^[0-9a-f]{32}$", Assert.Single(replaced));
        Assert.Equal(replaced[0], BackendSaw());

        (_, var ofTwo) = await SendAsync("/api/d", "one", "two");
        Assert.Matches("^[0-9a-f]{32}$", Assert.Single(ofTwo));
        Assert.Equal(ofTwo[0], BackendSaw());

        (_, var overBackends) = await SendAsync("/api/own-request-id", "mine");
        Assert.Equal(["mine"], overBackends); // not "mine, backend-own"

        (status, var unrouted) = await SendAsync("/nowhere");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Matches("^[0-9a-f]{32}$", Assert.Single(unrouted));

        (status, var failed) = await SendAsync("/dead/x", "to-a-dead-backend");
        Assert.True((int)status >= 500, $"{status}");
        Assert.Equal(["to-a-dead-backend"], failed);

        Assert.True(await Eventually.TrueAsync(() => output.Lines.Length == 7, TimeSpan.FromSeconds(10)), string.Join("\n", output.Lines));
        var lines = output.Lines;
        Assert.Contains(lines, l => l.Contains(" path=/api/a ", StringComparison.Ordinal) && l.EndsWith($" id={id}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" path=/api/b ", StringComparison.Ordinal) && l.EndsWith(" id=lb-7f3a", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" path=/api/c ", StringComparison.Ordinal) && l.EndsWith($" id={replaced[0]}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" path=/nowhere ", StringComparison.Ordinal) && l.EndsWith($" id={unrouted[0]}", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" path=/dead/x ", StringComparison.Ordinal) && l.EndsWith(" id=to-a-dead-backend", StringComparison.Ordinal));
    }

    /// <summary>
    /// A WebSocket's handshake headers are released once it is open (they would be held for its life), and its access line
    /// is written when it ends: the id and the trace are kept, where that line said <c>trace=- id=-</c> before.
    /// </summary>
    [Fact]
    public async Task AWebSocketsAccessLine_NamesItsIdAndTrace_AfterItsHandshakeHeadersAreReleased()
    {
        await using var backend = await WebSockets.ScriptedWebSocketBackend.StartAsync();
        var config = WebSockets.SlowClientTests.Route(backend);
        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true, "RequestId": true } }""");
        var output = new AccessLogTests.CapturedOutput();
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => AccessLogTests.CaptureAccessLog(services, output));
        var relays = gateway.Services.GetRequiredService<YarpGateway.WebSockets.WebSocketRelays>();

        await using (var client = await WebSockets.RawWebSocketClient.ConnectAsync(gateway.ProxyAddress, "/ws", extraHeaders: "X-Request-ID: ws-7f3a\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"))
        {
            Assert.Equal(101, client.Status);
            Assert.Contains("X-Request-ID: ws-7f3a\r\n", client.ResponseHeaders, StringComparison.OrdinalIgnoreCase);
            var server = await backend.AcceptAsync();
            await WebSockets.OpenRelay.SingleAsync(relays);
            server.Finish();
            Assert.True(await Eventually.TrueAsync(() => output.Lines.Length == 1, TimeSpan.FromSeconds(10)), string.Join("\n", output.Lines));
        }

        var line = Assert.Single(output.Lines);
        Assert.Contains(" status=101 ", line, StringComparison.Ordinal);
        Assert.EndsWith(" trace=4bf92f3577b34da6a3ce929d0e0e4736 id=ws-7f3a", line, StringComparison.Ordinal);
    }

    /// <summary>Off by default: nothing is added; the access log still names an id an ingress in front set. An edit turns it on, and another renames the header.</summary>
    [Fact]
    public async Task OffByDefault_TheAccessLogReadsAnIngresssId_AndEditsTurnItOnAndRenameIt()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true } }""");
        var output = new AccessLogTests.CapturedOutput();
        await using var gateway = await GatewayUnderTest.StartAsync(config, services => AccessLogTests.CaptureAccessLog(services, output));
        using var client = gateway.CreateProxyClient();

        using (var plain = await client.GetAsync("/plain"))
        {
            Assert.False(plain.Headers.Contains("X-Request-ID"));
            Assert.False(backend.RequestHeaders.Last().ContainsKey("X-Request-ID"));
        }

        using (var request = new HttpRequestMessage(HttpMethod.Get, "/from-ingress"))
        {
            request.Headers.Add("X-Request-ID", "ingress-1");
            using var fromIngress = await client.SendAsync(request);
            Assert.False(fromIngress.Headers.Contains("X-Request-ID")); // passed on to the backend, not answered
        }

        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true, "RequestId": true } }""");
        gateway.WriteConfig(config);
        Assert.True(await gateway.SectionReloadedAsync("Gateway:Telemetry"));
        using (var on = await client.GetAsync("/on"))
        {
            Assert.Equal(on.Headers.GetValues("X-Request-ID").Single(), backend.RequestHeaders.Last()["X-Request-ID"]);
        }

        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "AccessLog": true, "RequestId": true, "RequestIdHeader": "X-Correlation-ID" } }""");
        gateway.WriteConfig(config);
        Assert.True(await gateway.SectionReloadedAsync("Gateway:Telemetry", 2));
        using (var renamed = await client.GetAsync("/renamed"))
        {
            Assert.False(renamed.Headers.Contains("X-Request-ID"));
            Assert.Equal(renamed.Headers.GetValues("X-Correlation-ID").Single(), backend.RequestHeaders.Last()["X-Correlation-ID"]);
        }

        Assert.True(await Eventually.TrueAsync(() => output.Lines.Length == 4, TimeSpan.FromSeconds(10)), string.Join("\n", output.Lines));
        Assert.Contains(output.Lines, l => l.Contains(" path=/plain ", StringComparison.Ordinal) && l.EndsWith(" id=-", StringComparison.Ordinal));
        Assert.Contains(output.Lines, l => l.Contains(" path=/from-ingress ", StringComparison.Ordinal) && l.EndsWith(" id=ingress-1", StringComparison.Ordinal));
        Assert.Contains(output.Lines, l => l.Contains(" path=/renamed ", StringComparison.Ordinal) && !l.EndsWith(" id=-", StringComparison.Ordinal));
    }

    /// <summary>A response the output cache serves carries the id of the request it serves, not the one of the request that filled the cache.</summary>
    [Fact]
    public async Task ACachedAnswer_CarriesItsOwnRequestsId()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = "short";
        config["Gateway"] = JsonNode.Parse("""{ "Telemetry": { "RequestId": true }, "OutputCache": { "Policies": { "short": { "Duration": "00:05:00" } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        foreach (var id in new[] { "first", "second", "third" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/page");
            request.Headers.Add("X-Request-ID", id);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal([id], response.Headers.GetValues("X-Request-ID"));
        }

        Assert.Equal(1, backend.Requests); // the second and third were the cache's
    }
}
