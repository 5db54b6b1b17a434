using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http.Features;
using YarpGateway.Endpoints;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Endpoints;

/// <summary>
/// A gateway that ends TLS itself had no way to answer a browser that types the site's name (port 80 first): the optional
/// HttpsRedirect endpoint sends every plain-HTTP request to the same host and target over https, and proxies nothing.
/// </summary>
public class HttpsRedirectTests
{
    private static List<string> Errors(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new("Kestrel:Endpoints:Proxy:Url", "https://*:8443"), new("Kestrel:Endpoints:Management:Url", "http://*:8081")])
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();
        return GatewayKestrelSetup.Validate(configuration).Select(e => e.ToString()).ToList();
    }

    [Fact]
    public void TheEndpoint_BesideAnHttpsProxyEndpoint_IsValid_AndIsTheOnlyThirdOne()
    {
        Assert.Empty(Errors(("Kestrel:Endpoints:HttpsRedirect:Url", "http://*:8080")));
        Assert.Single(Errors(("Kestrel:Endpoints:HttpsRedirect:Url", "http://*:8080"), ("Kestrel:Endpoints:Extra:Url", "http://*:9000")));
    }

    [Theory]
    [InlineData("https://*:8080", "answers plain HTTP")]
    [InlineData("http://*:8443", "the Proxy endpoint's port too")]
    [InlineData("http://*:8081", "the Management endpoint's port too")]
    [InlineData("", "needs a URL")]
    public void ABadUrl_IsAnError(string url, string expected)
        => Assert.Contains(Errors(("Kestrel:Endpoints:HttpsRedirect:Url", url)), e => e.StartsWith("Kestrel:Endpoints:HttpsRedirect:Url: ", StringComparison.Ordinal) && e.Contains(expected, StringComparison.Ordinal));

    [Theory]
    [InlineData("Kestrel:Endpoints:HttpsRedirect:Protocols")]
    [InlineData("Kestrel:EndpointDefaults:Protocols")]
    public void WithoutHttp11_IsAnError(string key)
        => Assert.Contains(Errors(("Kestrel:Endpoints:HttpsRedirect:Url", "http://*:8080"), (key, "Http2")),
            e => e.StartsWith(key + ": 'Http2' leaves the HttpsRedirect endpoint without HTTP/1.1", StringComparison.Ordinal));

    [Fact]
    public void BesideAProxyEndpointWithoutHttps_IsAnError()
        => Assert.Contains(Errors(("Kestrel:Endpoints:Proxy:Url", "http://*:8443"), ("Kestrel:Endpoints:HttpsRedirect:Url", "http://*:8080")),
            e => e.Contains("does not serve https", StringComparison.Ordinal));

    [Theory]
    [InlineData(443, "shop.example", "/a/b?x=%2F&y", "https://shop.example/a/b?x=%2F&y")]
    [InlineData(443, "shop.example:80", "/", "https://shop.example/")]
    [InlineData(8443, "shop.example:8080", "/login", "https://shop.example:8443/login")]
    [InlineData(443, "[::1]:8080", "/x", "https://[::1]/x")]
    [InlineData(443, "shop.example", "//evil.example/x", "https://shop.example//evil.example/x")] // the authority is the request's host
    [InlineData(443, "", "/x", null)]
    [InlineData(443, "shop.example", "*", null)]
    [InlineData(443, "shop.example", "http://other.example/x", null)]
    public async Task TheAnswer_IsTheSameHostAndTargetOverHttps(int port, string host, string target, string? expected)
    {
        var context = new DefaultHttpContext();
        context.Request.Host = new HostString(host);
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = target;
        context.Request.Protocol = "HTTP/1.1";

        await HttpsRedirect.Answer(port)(context);

        Assert.Equal(expected is null ? 400 : 308, context.Response.StatusCode);
        Assert.Equal(expected, expected is null ? null : context.Response.Headers.Location.ToString());
        Assert.Equal(expected is null ? null : "close", expected is null ? null : context.Response.Headers.Connection.ToString());
    }

    [Fact]
    public async Task APlainHttpRequest_IsSentToHttps_AndNothingIsProxied()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var (tls, _) = await TestCertificate.ProxyTlsArgsAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            [.. tls, "--Kestrel:Endpoints:HttpsRedirect:Url=http://127.0.0.1:0", "--Gateway:HttpsRedirect:Port=8443"]);
        var address = RedirectAddress(gateway);

        foreach (var method in new[] { "GET", "POST" })
        {
            using var socket = await RawSocket.ConnectAsync(address);
            var head = await RawSocket.ExchangeAsync(socket, Encoding.ASCII.GetBytes($"{method} /cart?item=%2F7 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 0\r\n\r\n"));

            Assert.StartsWith("HTTP/1.1 308 ", head, StringComparison.Ordinal);
            Assert.Contains("\r\nLocation: https://shop.example:8443/cart?item=%2F7\r\n", head, StringComparison.Ordinal);
            Assert.Contains("\r\nConnection: close\r\n", head, StringComparison.Ordinal);
            Assert.Empty(await RawSocket.ReceiveUntilClosedAsync(socket)); // closed after the answer
        }

        using (var socket = await RawSocket.ConnectAsync(address))
        {
            Assert.StartsWith("HTTP/1.1 400 ", await RawSocket.ExchangeAsync(socket, "GET /x HTTP/1.0\r\n\r\n"u8.ToArray()), StringComparison.Ordinal); // no Host
        }

        Assert.Equal(0, backend.Requests);
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[HttpsRedirectServed]", StringComparison.Ordinal) && l.Contains("https://<its host>:8443<its path and query>", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConnectionsPastMaxConnections_AreClosedAtOnce_AndTakenAgainOnceOthersClose()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var (tls, _) = await TestCertificate.ProxyTlsArgsAsync();
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)),
            [.. tls, "--Kestrel:Endpoints:HttpsRedirect:Url=http://127.0.0.1:0", "--Gateway:HttpsRedirect:MaxConnections=2"]);
        var address = RedirectAddress(gateway);
        var get = "GET / HTTP/1.1\r\nHost: shop.example\r\n\r\n"u8.ToArray();

        // Two that send nothing, as a flood of idle connections would.
        using var idle1 = await RawSocket.ConnectAsync(address);
        using var idle2 = await RawSocket.ConnectAsync(address);
        Assert.True(await Eventually.TrueAsync(async () => await ExchangeAsync(address, get) == "", TimeSpan.FromSeconds(10)), "a third connection was served");

        idle1.Close();
        Assert.True(await Eventually.TrueAsync(async () => (await ExchangeAsync(address, get)).StartsWith("HTTP/1.1 308 ", StringComparison.Ordinal), TimeSpan.FromSeconds(10)),
            "no connection was taken again once one closed");
    }

    // A connection closed at once may be reset before the connect returns to the client, or during it: "" as for one
    // closed unanswered.
    private static async Task<string> ExchangeAsync(Uri address, byte[] request)
    {
        try
        {
            using var socket = await RawSocket.ConnectAsync(address);
            return await RawSocket.ExchangeAsync(socket, request);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return "";
        }
    }

    private static Uri RedirectAddress(GatewayUnderTest gateway)
        => new($"http://127.0.0.1:{((IPEndPoint)gateway.Services.GetRequiredService<GatewayListeners>().HttpsRedirectEndPoints.Single()).Port}/");
}
