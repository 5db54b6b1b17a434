using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Functional;

/// <summary><c>Kestrel:Limits</c>, the standard Kestrel keys: applied, a bad value listed at start-up, a typo named.</summary>
public class KestrelLimitsTests
{
    [Fact]
    public async Task KestrelLimitsMaxRequestBodySize_IsApplied_ADeclaredBodyOverItGets413WithoutReachingTheBackend()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MaxRequestBodySize": 1000 } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Telemetry:RequestId=true");
        using var client = gateway.CreateProxyClient();

        using (var small = await client.PostAsync("/up", new ByteArrayContent(new byte[1000])))
        {
            Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        }

        string id;
        using (var large = await client.PostAsync("/up", new ByteArrayContent(new byte[1001])))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, large.StatusCode);
            id = Assert.Single(large.Headers.GetValues("X-Request-ID"));
        }

        Assert.Equal(1, backend.Requests); // the declared 1,001 bytes never reached it
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[RequestBodyTooLarge]", StringComparison.Ordinal) && l.Contains("1000 bytes", StringComparison.Ordinal)
            && l.Contains($"(request id {id})", StringComparison.Ordinal)); // the id the client was given
    }

    [Theory]
    [InlineData(100_000)]
    [InlineData(-1)] // no limit
    public async Task ARoutesMaxRequestBodySize_RaisesKestrelsLimit_ForADeclaredBody(long routeLimit)
    {
        // What the 413's log line tells an operator to do: the early check compared a Content-Length with Kestrel's
        // limit alone, since YARP applies the route's only just before forwarding, and refused what the route allows.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MaxRequestBodySize": 1000 } }""");
        config["ReverseProxy"]!["Routes"]!["all"]!["MaxRequestBodySize"] = routeLimit;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.PostAsync("/up", new ByteArrayContent(new byte[50_000]));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, backend.Requests);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[RequestBodyTooLarge]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ARoutesMaxRequestBodySize_RaisesKestrelsLimit_ForAChunkedBody()
    {
        // A body without a length is looked at before the route and cluster limits (is it still arriving?), and Kestrel's
        // limit is fixed once a body is read: the route's must be applied before that look, or YARP can no longer raise it.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MaxRequestBodySize": 1000 } }""");
        config["ReverseProxy"]!["Routes"]!["all"]!["MaxRequestBodySize"] = 100_000;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await PostChunkedAsync(client, 50_000);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(50_000, backend.Bodies.Single().Length);
    }

    [Fact]
    public async Task AChunkedBodyThatGrowsPastTheRoutesLimit_Gets413_AndIsLogged()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["MaxRequestBodySize"] = 1000;
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await PostChunkedAsync(client, 5000);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[RequestBodyTooLarge]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)));
    }

    /// <summary>A POST of <paramref name="length"/> bytes, chunked (no <c>Content-Length</c>).</summary>
    private static async Task<HttpResponseMessage> PostChunkedAsync(HttpClient client, int length)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/up") { Content = new StreamContent(new MemoryStream(new byte[length])) };
        request.Headers.TransferEncodingChunked = true;
        return await client.SendAsync(request);
    }

    [Fact]
    public void DataRates_AreReadFromBytesPerSecondAndGracePeriod_ZeroTurnsThemOff()
    {
        static IConfigurationSection Section(string json)
            => new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build().GetSection("Rate");
        var kestrels = new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(240, TimeSpan.FromSeconds(5));

        var both = YarpGateway.Endpoints.GatewayKestrelSetup.DataRate(Section("""{ "Rate": { "BytesPerSecond": 1000, "GracePeriod": "00:00:02" } }"""), kestrels);
        var one = YarpGateway.Endpoints.GatewayKestrelSetup.DataRate(Section("""{ "Rate": { "BytesPerSecond": "500.5" } }"""), kestrels);
        var off = YarpGateway.Endpoints.GatewayKestrelSetup.DataRate(Section("""{ "Rate": { "BytesPerSecond": 0 } }"""), kestrels);
        var bad = YarpGateway.Endpoints.GatewayKestrelSetup.DataRate(Section("""{ "Rate": { "BytesPerSecond": "fast" } }"""), kestrels);
        var none = YarpGateway.Endpoints.GatewayKestrelSetup.DataRate(Section("""{ }"""), kestrels);

        Assert.Equal((1000.0, TimeSpan.FromSeconds(2)), (both!.BytesPerSecond, both.GracePeriod));
        Assert.Equal((500.5, TimeSpan.FromSeconds(5)), (one!.BytesPerSecond, one.GracePeriod));
        Assert.Null(off);
        Assert.Same(kestrels, bad); // left to the start-up check, which lists it
        Assert.Same(kestrels, none);
    }

    /// <summary>
    /// Kestrel's minimum request body rate, raised as an operator hardening against slow uploads would: an upload sent at
    /// 500 bytes a second (over Kestrel's 240) is cut once its grace is over. Before, the keys were logged as unknown and
    /// changed nothing. The client's pace (a write a second) is the scenario; the wait for the cut is bounded.
    /// </summary>
    [Fact]
    public async Task ARaisedMinimumRequestBodyRate_CutsAnUploadBelowIt()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MinRequestBodyDataRate": { "BytesPerSecond": 1000, "GracePeriod": "00:00:02" } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("MinRequestBodyDataRate", StringComparison.Ordinal)); // not reported as unknown

        using var socket = await RawSocket.ConnectAsync(gateway.ProxyAddress);
        await socket.SendAsync("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"u8.ToArray());
        var answer = RawSocket.ReceiveResponseHeadAsync(socket); // bounded at 10 s
        for (var second = 0; second < 9 && !answer.IsCompleted; second++)
        {
            try
            {
                await socket.SendAsync(new byte[500]);
            }
            catch (System.Net.Sockets.SocketException)
            {
                break; // cut
            }

            await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(1)));
        }

        Assert.StartsWith("HTTP/1.1 408", await answer, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadKestrelLimitValues_AreListedAtStartUp_EveryOne()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Kestrel"] = JsonNode.Parse("""{ "Limits": { "MaxRequestBodySize": "30MB", "KeepAliveTimeout": "soon", "Http2": { "MaxStreamsPerConnection": "many" }, "MaxConcurrentConnections": 10, "MinRequestBodyDataRate": { "BytesPerSecond": -1, "GracePeriod": "00:00:01" }, "MinResponseDataRate": { "BytesPerSecond": "fast" } } }""");

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:MaxRequestBodySize" && e.Message.Contains("'30MB'", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:KeepAliveTimeout" && e.Message.Contains("'soon'", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:Http2:MaxStreamsPerConnection" && e.Message.Contains("'many'", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:MaxConcurrentConnections" && e.Message.Contains("Gateway:Admission:MaxConcurrentConnections", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:MinRequestBodyDataRate:BytesPerSecond" && e.Message.Contains("got '-1'", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:MinRequestBodyDataRate:GracePeriod" && e.Message.Contains("more than 1 s", StringComparison.Ordinal));
        Assert.Contains(ex.Errors, e => e.Key == "Kestrel:Limits:MinResponseDataRate:BytesPerSecond" && e.Message.Contains("got 'fast'", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("MinRequestBodyDataRate", "BytesPerSecond", "fast")]
    [InlineData("MinResponseDataRate", "BytesPerSecond", "fast")]
    [InlineData("MinRequestBodyDataRate", "GracePeriod", "soon")]
    public async Task ADataRateValueThatDoesNotConvert_Alone_IsListed_NotAnUnhandledException(string rate, string key, string value)
    {
        // With another bad limit beside it the limits were not bound, so it was listed; alone, the binder built the data
        // rate through its constructor, and its conversion error ended the start with a stack trace (exit 134).
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["Kestrel"] = new JsonObject { ["Limits"] = new JsonObject { [rate] = new JsonObject { [key] = value } } };

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        var error = Assert.Single(ex.Errors);
        Assert.Equal($"Kestrel:Limits:{rate}:{key}", error.Key);
        Assert.Contains($"got '{value}'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MaxRequestLineSize", "x")]
    [InlineData("MaxRequestBodySize", "30MB")]
    [InlineData("Http2:MaxStreamsPerConnection", "many")]
    public async Task ALimitThatDoesNotConvert_IsListedOnce_NotAlsoAsOutOfKestrelsRange(string key, string value)
    {
        // The range check binds each value alone and reported the binder's "x is not a valid value for Int32" as well.
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config, $"--Kestrel:Limits:{key}={value}"));

        var error = Assert.Single(ex.Errors);
        Assert.Equal($"Kestrel:Limits:{key}", error.Key);
        Assert.Contains("is not a whole number", error.Message, StringComparison.Ordinal);
    }
}
