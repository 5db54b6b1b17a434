using System.Net;
using System.Text;
using YarpGateway.ForwardedHeaders;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// A redirect to the backend's own address reaches the client as a path: before, a backend that built absolute
/// redirects from the Host YARP gives it (the destination's) sent clients to an address only the gateway can reach.
/// </summary>
public class LocationTests
{
    private static readonly Uri Destination = new("http://10.0.0.5:8080/");

    [Theory]
    [InlineData("http://10.0.0.5:8080/login?next=%2Fa%20b#top", "/login?next=%2Fa%20b#top")]
    [InlineData("HTTP://10.0.0.5:8080/x", "/x")]
    [InlineData("http://10.0.0.5:8080", "/")]
    [InlineData("http://10.0.0.5:8080?q=1", "/?q=1")]
    [InlineData("http://10.0.0.5:8080#f", "/#f")]
    [InlineData("http://user@10.0.0.5:8080/x", "/x")]
    [InlineData("/login", null)]                          // relative already
    [InlineData("//10.0.0.5:8080/x", null)]               // scheme-relative: left as the backend wrote it
    [InlineData("http://10.0.0.5:8081/x", null)]          // another port
    [InlineData("https://10.0.0.5:8080/x", null)]         // another scheme
    [InlineData("http://idp.example/authorize", null)]    // another host
    [InlineData("http://10.0.0.5:8080.evil/x", null)]
    [InlineData("not a uri", null)]
    public void OnlyAnAbsoluteLocationOnTheDestination_BecomesAPath(string location, string? expected)
        => Assert.Equal(expected, LocationTransformProvider.OnTheDestination(location, Destination));

    [Fact]
    public void TheDefaultPort_IsThePort()
        => Assert.Equal("/x", LocationTransformProvider.OnTheDestination("http://backend.svc/x", new Uri("http://backend.svc:80/")));

    [Theory]
    [InlineData("http://127.0.0.1:{port}/login?next=%2Fcart", "/login?next=%2Fcart")]
    [InlineData("http://other.example/orders/7", "http://other.example/orders/7")]
    [InlineData("/relative", "/relative")]
    public async Task ABackendsRedirectToItself_ReachesTheClientAsAPath_OthersUnchanged(string sent, string received)
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
        {
            // As Rails' redirect_to builds it: from the Host the backend was given, which YARP sets to the destination's.
            var location = sent.Replace("{port}", ((IPEndPoint)socket.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"), cancellationToken);
        });
        var config = ProxyConfigJson.CatchAll("RoundRobin");
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"] = new System.Text.Json.Nodes.JsonObject { ["d"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = backend.Address.ToString() } };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = gateway.ProxyAddress, Timeout = TimeSpan.FromSeconds(20) };

        using var response = await client.GetAsync("/cart/checkout");

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal(received, response.Headers.Location?.OriginalString);
    }
}
