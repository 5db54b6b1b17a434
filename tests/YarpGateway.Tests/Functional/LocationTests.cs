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
    [InlineData("http://10.0.0.5:8080//evil.example/x/", "/evil.example/x/")] // never another host's reference (it was //evil.example/x/)
    [InlineData("http://10.0.0.5:8080/\\evil.example/x", "/evil.example/x")]
    [InlineData("http://10.0.0.5:8080/%2Fevil.example", "/%2Fevil.example")]
    [InlineData("http://10.0.0.5:8080/\t/evil.example/x/", "/evil.example/x/")] // a browser removes tabs first: it was /\t/evil.example/x/, read as //evil.example/x/
    [InlineData("http://10.0.0.5:8080/\t\\evil.example", "/evil.example")]
    [InlineData("http://10.0.0.5:8080/\tx", "/\tx")]                          // one slash: nothing to merge
    public void OnlyAnAbsoluteLocationOnTheDestination_BecomesAPath(string location, string? expected)
        => Assert.Equal(expected, LocationTransformProvider.OnTheDestination(location, Destination));

    // The backend's side of the route mapped to the client's, as nginx's proxy_redirect default maps proxy_pass's URI
    // to the location's prefix.
    [Theory]
    [InlineData("http://10.0.0.5:8080/login", "/account", "/api/account", "/api/login")]                 // PathRemovePrefix /api
    [InlineData("http://10.0.0.5:8080/api/login", "/account", "/api/account", "/api/login")]             // written under the prefix already (X-Forwarded-Prefix)
    [InlineData("http://10.0.0.5:8080/apiary", "/account", "/api/account", "/api/apiary")]
    [InlineData("http://10.0.0.5:8080/login?next=%2F", "/", "/api", "/api/login?next=%2F")]              // all of the path removed
    [InlineData("http://10.0.0.5:8080/app/login", "/app/shop/cart", "/shop/cart", "/login")]              // the destination's own path
    [InlineData("http://10.0.0.5:8080/app", "/app/shop/cart", "/shop/cart", "/")]
    [InlineData("http://10.0.0.5:8080/application", "/app/shop/cart", "/shop/cart", "/application")]      // not under it: as it is
    [InlineData("http://10.0.0.5:8080/v2/orders/7", "/v2/orders", "/api/orders", "/api/orders/7")]       // PathPattern /v2/{**rest}
    [InlineData("http://10.0.0.5:8080/login", "/x", "//api/x", "/api/login")]                             // routed with slashes merged
    [InlineData("http://10.0.0.5:8080/login", "/fixed", "/api/x", "/login")]                              // PathSet: nothing to map
    [InlineData("http://10.0.0.5:8080/login", "/cart", "/cart", "/login")]                                // no transform
    [InlineData("http://10.0.0.5:8080//evil.example/", "/x", "/api/x", "/api//evil.example/")]            // under the prefix: the client's host
    public void APathIsMappedFromTheBackendsSideOfTheRouteToTheClients(string location, string backendPath, string clientPath, string expected)
        => Assert.Equal(expected, LocationTransformProvider.OnTheDestination(location, new Uri("http://10.0.0.5:8080" + backendPath), clientPath));

    [Theory]
    [InlineData("//evil.example/x", "/evil.example/x/")]
    [InlineData("///evil.example/x", "/evil.example/x/")]
    [InlineData("/%09/evil.example/x", "/evil.example/x/")] // it was /<tab>/evil.example/x/: a browser drops the tab
    public async Task ARedirectBuiltFromTheRequestsOwnPath_NeverSendsTheClientToAnotherHost(string target, string expected)
    {
        // A trailing-slash redirect, as frameworks build them: the backend's own address and the request's path, decoded.
        await using var backend = await RawTcpBackend.StartAsync(async (socket, head, cancellationToken) =>
        {
            var path = Uri.UnescapeDataString(head.Split(' ')[1]);
            var port = ((IPEndPoint)socket.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:{port}{path}/\r\nContent-Length: 0\r\n\r\n"), cancellationToken);
        });
        var config = ProxyConfigJson.CatchAll("RoundRobin");
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"] = new System.Text.Json.Nodes.JsonObject { ["d"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = backend.Address.ToString() } };
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, target);

        Assert.StartsWith("HTTP/1.1 301", head, StringComparison.Ordinal);
        Assert.Contains($"\r\nLocation: {expected}\r\n", head, StringComparison.Ordinal); // it was //evil.example/x/: a browser goes to evil.example
    }

    [Fact]
    public async Task UnderAPathRemovePrefix_ABackendsRedirectStaysUnderTheRoutesPrefix()
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
        {
            var port = ((IPEndPoint)socket.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/login?next=%2Faccount\r\nContent-Length: 0\r\n\r\n"), cancellationToken);
        });
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c1")], [("c1", "RoundRobin", [])]);
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"] = new System.Text.Json.Nodes.JsonObject { ["d"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = backend.Address.ToString() } };
        config["ReverseProxy"]!["Routes"]!["api"]!["Transforms"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["PathRemovePrefix"] = "/api" });
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, "/api/account");

        Assert.StartsWith("HTTP/1.1 302", head, StringComparison.Ordinal);
        Assert.Contains("\r\nLocation: /api/login?next=%2Faccount\r\n", head, StringComparison.Ordinal); // it was /login: outside the route
    }

    // A destination's Host: the backend builds its redirects from it as from the address's host (it was passed on, an
    // internal name the client cannot reach).
    [Theory]
    [InlineData("http://backend.internal/login", "backend.internal", "/api/login")]
    [InlineData("http://backend.internal:80/login", "backend.internal", "/api/login")]
    [InlineData("http://backend.internal:8080/login", "backend.internal:8080", "/api/login")]
    [InlineData("http://backend.internal:8080/login", "backend.internal", null)]
    [InlineData("https://backend.internal/login", "backend.internal", null)]     // another scheme than the destination's
    [InlineData("http://other.internal/login", "backend.internal", null)]
    public void ARedirectToTheHostTheBackendWasSent_BecomesAPathToo(string location, string sentHost, string? expected)
        => Assert.Equal(expected, LocationTransformProvider.OnTheDestination(location, new Uri("http://10.0.0.5:8080/account"), "/api/account", sentHost));

    // Behind the client's https, a backend told X-Forwarded-Proto: https builds its redirects with https and the Host it
    // was sent, at that port or at 443 (Tomcat's RemoteIpValve, Spring, Rails): an address only the gateway's network has.
    [Theory]
    [InlineData("https://10.0.0.5:8080/login", null, true, "/api/login")]
    [InlineData("https://10.0.0.5/login", null, true, "/api/login")]                           // RemoteIpValve: port 443
    [InlineData("https://backend.internal/login", "backend.internal", true, "/api/login")]
    [InlineData("https://backend.internal:8080/login", "backend.internal:8080", true, "/api/login")]
    [InlineData("https://10.0.0.5:8443/login", null, true, null)]                              // another port
    [InlineData("https://other.internal/login", "backend.internal", true, null)]
    [InlineData("https://10.0.0.5:8080/login", null, false, null)]                             // the client on plain HTTP: the backend's way up to TLS
    public void BehindTheClientsHttps_AnHttpsRedirectToTheBackendsOwnHost_BecomesAPath(string location, string? sentHost, bool clientUsedHttps, string? expected)
        => Assert.Equal(expected, LocationTransformProvider.OnTheDestination(location, new Uri("http://10.0.0.5:8080/account"), "/api/account", sentHost, clientUsedHttps));

    [Fact]
    public void AnHttpsDestination_KeepsItsOwnRule()
        => Assert.Null(LocationTransformProvider.OnTheDestination("http://10.0.0.5:8443/x", new Uri("https://10.0.0.5:8443/"), clientUsedHttps: true));

    /// <summary>The client's https as a trusted load balancer in front says it (X-Forwarded-Proto), and the backend's redirect built from it.</summary>
    [Fact]
    public async Task BehindATrustedLoadBalancersHttps_TheBackendsHttpsRedirectToItself_ReachesTheClientAsAPath()
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, head, cancellationToken) =>
        {
            var proto = head.Split("\r\n").First(l => l.StartsWith("X-Forwarded-Proto:", StringComparison.OrdinalIgnoreCase))[18..].Trim();
            var host = head.Split("\r\n").First(l => l.StartsWith("Host:", StringComparison.OrdinalIgnoreCase))[5..].Trim();
            await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 302 Found\r\nLocation: {proto}://{host}/login\r\nContent-Length: 0\r\n\r\n"), cancellationToken);
        });
        var config = ProxyConfigJson.CatchAll(backend.Address);
        config["Gateway"] = System.Text.Json.Nodes.JsonNode.Parse("""{ "ForwardedHeaders": { "KnownProxies": [ "127.0.0.1" ] } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = gateway.ProxyAddress, Timeout = TimeSpan.FromSeconds(20) };

        using var request = new HttpRequestMessage(HttpMethod.Get, "/account");
        request.Headers.Add("X-Forwarded-Proto", "https");
        request.Headers.Add("X-Forwarded-For", "203.0.113.7");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Found, response.StatusCode);
        Assert.Equal("/login", response.Headers.Location?.OriginalString); // it was https://127.0.0.1:<port>/login
    }

    [Fact]
    public async Task ADestinationsHost_IsTheBackendsOwnAddressToo()
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, head, cancellationToken) =>
        {
            var host = head.Split("\r\n").First(l => l.StartsWith("Host:", StringComparison.OrdinalIgnoreCase))[5..].Trim();
            await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 302 Found\r\nLocation: http://{host}/login\r\nContent-Length: 0\r\n\r\n"), cancellationToken);
        });
        var config = ProxyConfigJson.Config([("api", "/api/{**rest}", "c1")], [("c1", "RoundRobin", [])]);
        config["ReverseProxy"]!["Clusters"]!["c1"]!["Destinations"] = new System.Text.Json.Nodes.JsonObject { ["d"] = new System.Text.Json.Nodes.JsonObject { ["Address"] = backend.Address.ToString(), ["Host"] = "backend.internal" } };
        config["ReverseProxy"]!["Routes"]!["api"]!["Transforms"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["PathRemovePrefix"] = "/api" });
        await using var gateway = await GatewayUnderTest.StartAsync(config);

        var head = await RawSocket.GetHeadAsync(gateway.ProxyAddress, "/api/account");

        Assert.StartsWith("HTTP/1.1 302", head, StringComparison.Ordinal);
        Assert.Contains("\r\nLocation: /api/login\r\n", head, StringComparison.Ordinal); // it was http://backend.internal/login
    }

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

    [Theory]
    [InlineData("0; url=http://b/x", "http://b/x")]
    [InlineData("5;URL=http://b/x", "http://b/x")]
    [InlineData("0; Url = 'http://b/x?a=1' ", "http://b/x?a=1")]
    [InlineData("0;url=\"http://b/x\"", "http://b/x")]
    [InlineData("1.5, http://b/x", "http://b/x")]              // HTML reads a ',' and a URL without url= too
    [InlineData("  3 ; url=http://b/x  ", "http://b/x")]
    [InlineData("0; url='http://b/x", "http://b/x")]           // an unclosed quote: to the end
    [InlineData("0; url=/relative", null)]
    [InlineData("0", null)]                                    // a reload, no URL
    [InlineData("url=http://b/x", null)]                       // no delay: browsers ignore it
    [InlineData("0 url=http://b/x", null)]
    public void ARefreshHeadersUrl_IsFound(string value, string? url)
        => Assert.Equal(url, LocationTransformProvider.RefreshUrl(value) is var (start, length) ? value.Substring(start, length) : null);

    /// <summary>
    /// <c>Refresh</c> redirects (older PHP and CGI applications, download pages) to the backend's own address reached the
    /// client as they were, an address it cannot reach; nginx's <c>proxy_redirect</c> maps them as it maps a <c>Location</c>.
    /// </summary>
    [Theory]
    [InlineData("0; url=http://127.0.0.1:{port}/login?next=%2Fcart", "0; url=/api/login?next=%2Fcart")]
    [InlineData("5;URL='http://127.0.0.1:{port}/done'", "5;URL='/api/done'")]
    [InlineData("0; url=http://other.example/x", "0; url=http://other.example/x")]
    [InlineData("30", "30")]
    public async Task ARefreshToTheBackendItself_ReachesTheClientAsAPathUnderTheRoute(string sent, string received)
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken) =>
        {
            var refresh = sent.Replace("{port}", ((IPEndPoint)socket.LocalEndPoint!).Port.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nRefresh: {refresh}\r\nContent-Length: 2\r\n\r\nok"), cancellationToken);
        });
        var config = ProxyConfigJson.CatchAll(backend.Address);
        config["ReverseProxy"]!["Routes"]!["all"]!["Match"] = new System.Text.Json.Nodes.JsonObject { ["Path"] = "/api/{**rest}" };
        config["ReverseProxy"]!["Routes"]!["all"]!["Transforms"] = System.Text.Json.Nodes.JsonNode.Parse("""[ { "PathRemovePrefix": "/api" } ]""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/api/cart/checkout");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(received, Assert.Single(response.Headers.GetValues("Refresh")));
    }
}
