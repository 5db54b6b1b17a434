using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using YarpGateway.ForwardedHeaders;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// A backend's cookies are scoped to the client's side of the route, as its redirects are: before, a Tomcat application
/// under its context path set its session cookie for <c>/app</c>, redirected to <c>/app/home</c>, which reached the client
/// as <c>/home</c>, and the browser never sent the cookie back there.
/// </summary>
public class SetCookieTests
{
    [Theory]
    // The destination's own path (a Tomcat context path, http://10.0.0.5:8080/app/ served at /).
    [InlineData("/app/login", "/login", "JSESSIONID=1; Path=/app; HttpOnly", "JSESSIONID=1; Path=/; HttpOnly")]
    [InlineData("/app/login", "/login", "a=1; Path=/app/", "a=1; Path=/")]
    [InlineData("/app/login", "/login", "a=1; path=/app/cart; Secure", "a=1; path=/cart; Secure")]
    [InlineData("/app/login", "/login", "a=1;Path=/app;HttpOnly", "a=1;Path=/;HttpOnly")]
    [InlineData("/app/login", "/login", "a=1; Path = /app ; Secure", "a=1; Path = / ; Secure")]
    [InlineData("/app/login", "/login", "a=1; Path=/application", null)]     // not under it
    [InlineData("/app/login", "/login", "a=1; Path=/", null)]
    [InlineData("/app/login", "/login", "a=1", null)]                        // no attributes
    [InlineData("/app/login", "/login", "a=1; HttpOnly; Path", null)]
    [InlineData("/app/login", "/login", "a=1; Path=app", null)]              // not a path: the browser uses its default
    // PathRemovePrefix /api: /api/account sent on as /account.
    [InlineData("/account", "/api/account", "a=1; Path=/account", "a=1; Path=/api/account")]
    [InlineData("/account", "/api/account", "a=1; Path=/", null)]           // the whole site's: a sign-in service's, kept so
    [InlineData("/account", "/api/account", "a=1; Path=/api/account", null)] // under the client's prefix already (X-Forwarded-Prefix read)
    // PathPattern /v2/{**rest} on a route /api/{**rest}.
    [InlineData("/v2/orders", "/api/orders", "a=1; Path=/v2", "a=1; Path=/api")]
    // A route that maps nothing, and a PathSet.
    [InlineData("/cart", "/cart", "a=1; Path=/cart", null)]
    [InlineData("/fixed", "/api/x", "a=1; Path=/fixed", null)]
    public void APathIsMappedFromTheBackendsSideOfTheRouteToTheClients(string backendPath, string clientPath, string setCookie, string? expected)
        => Assert.Equal(expected, SetCookieTransformProvider.OnTheClientSide(setCookie, new(new Uri("http://10.0.0.5:8080" + backendPath), clientPath, null, "shop.example")));

    [Theory]
    [InlineData("a=1; Domain=10.0.0.5; Path=/", null, "shop.example", "a=1; Path=/")]
    [InlineData("a=1; Path=/; domain=.10.0.0.5", null, "shop.example", "a=1; Path=/")]
    [InlineData("a=1; Domain=backend.internal", "backend.internal", "shop.example", "a=1")]
    [InlineData("a=1; Domain=BACKEND.internal; Secure", "backend.internal:8080", "shop.example", "a=1; Secure")]
    [InlineData("a=1; Domain=shop.example", null, "shop.example", null)]          // the client's own
    [InlineData("a=1; Domain=example", null, "shop.example", null)]               // not the backend's
    [InlineData("a=1; Domain=10.0.0.5", null, "10.0.0.5", null)]                   // the client reached the gateway by that name: the browser keeps it
    [InlineData("a=1; Domain=backend.internal", "backend.internal", "www.backend.internal", null)]
    [InlineData("a=1; Domain=", null, "shop.example", null)]
    public void ADomainNamingTheBackendsOwnHost_IsRemoved(string setCookie, string? sentHost, string clientHost, string? expected)
        => Assert.Equal(expected, SetCookieTransformProvider.OnTheClientSide(setCookie, new(new Uri("http://10.0.0.5:8080/x"), "/x", sentHost, clientHost)));

    [Fact]
    public void PathAndDomainTogether()
        => Assert.Equal(
            "JSESSIONID=1; Path=/; HttpOnly",
            SetCookieTransformProvider.OnTheClientSide("JSESSIONID=1; Domain=10.0.0.5; Path=/app; HttpOnly", new(new Uri("http://10.0.0.5:8080/app/login"), "/login", null, "shop.example")));

    [Fact]
    public async Task ASignInUnderTheBackendsContextPath_KeepsItsSessionCookie()
    {
        // Tomcat under its context path /app, served at the gateway's /: its session cookie for /app, its redirect built
        // from the Host it was sent.
        await using var backend = await RawTcpBackend.StartAsync(async (socket, head, cancellationToken) =>
        {
            var target = head.Split(' ')[1];
            var host = head.Split("\r\n").First(l => l.StartsWith("Host:", StringComparison.OrdinalIgnoreCase))[5..].Trim();
            var cookie = head.Split("\r\n").FirstOrDefault(l => l.StartsWith("Cookie:", StringComparison.OrdinalIgnoreCase))?[7..].Trim() ?? "none";
            var response = target == "/app/login"
                ? $"HTTP/1.1 302 Found\r\nSet-Cookie: JSESSIONID=s3cr3t; Path=/app; HttpOnly\r\nLocation: http://{host}/app/home\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                : $"HTTP/1.1 200 OK\r\nContent-Length: {target.Length + cookie.Length + 1}\r\nConnection: close\r\n\r\n{target} {cookie}";
            await socket.SendAsync(Encoding.ASCII.GetBytes(response), cancellationToken);
        });
        var config = ProxyConfigJson.CatchAll(new Uri(backend.Address, "/app/"));
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = true }) { BaseAddress = gateway.ProxyAddress, Timeout = TimeSpan.FromSeconds(20) };

        var body = await client.GetStringAsync("/login");

        Assert.Equal("/app/home JSESSIONID=s3cr3t", body); // it was "/app/home none": the cookie was for /app, the client at /home
    }

    [Fact]
    public async Task TheSessionAffinityCookie_IsTheGatewaysOwn_AndLeftAsConfigured()
    {
        await using var backend = await RawTcpBackend.StartAsync(async (socket, cancellationToken)
            => await socket.SendAsync("HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=1; Path=/app\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), cancellationToken));
        var config = ProxyConfigJson.CatchAll(new Uri(backend.Address, "/app/"));
        config["ReverseProxy"]!["Clusters"]!["c1"]!["SessionAffinity"] = new JsonObject
        {
            ["Enabled"] = true, ["Policy"] = "Cookie", ["AffinityKeyName"] = "aff", ["Cookie"] = new JsonObject { ["Path"] = "/app" },
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient { BaseAddress = gateway.ProxyAddress, Timeout = TimeSpan.FromSeconds(20) };

        using var response = await client.GetAsync("/home");

        var cookies = response.Headers.GetValues("Set-Cookie").ToList();
        Assert.Contains("JSESSIONID=1; Path=/", cookies);
        Assert.Contains(cookies, c => c.StartsWith("aff=", StringComparison.Ordinal) && c.Contains("path=/app", StringComparison.OrdinalIgnoreCase));
    }
}
