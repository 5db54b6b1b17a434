using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>CORS answered by the gateway: preflights never reach a backend; a foreign origin gets no Access-Control-Allow-* header.</summary>
public class CorsTests
{
    private const string App = "https://app.example.com";

    private static async Task<GatewayUnderTest> StartAsync(TestBackend backend, TestTokens tokens)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        var route = config["ReverseProxy"]!["Routes"]!["all"]!;
        route["CorsPolicy"] = "web";
        route["AuthorizationPolicy"] = "Default";
        config["Authentication"] = tokens.Section();
        config["Gateway"] = JsonNode.Parse($$"""
        { "Cors": { "Policies": { "web": { "Origins": [ "{{App}}" ], "Methods": [ "GET", "POST" ], "Headers": [ "Authorization", "Content-Type" ],
                                           "ExposedHeaders": [ "X-Request-Id" ], "MaxAge": "00:10:00" } } } }
        """);
        return await GatewayUnderTest.StartAsync(config);
    }

    private static HttpRequestMessage Preflight(string origin, string method, string path = "/x") => new(HttpMethod.Options, path)
    {
        Headers =
        {
            { "Origin", origin },
            { "Access-Control-Request-Method", method },
            { "Access-Control-Request-Headers", "authorization" },
        },
    };

    /// <summary>
    /// Browsers apply no CORS to WebSockets: a page on any site could open one to the gateway with its users' cookies and
    /// read what came back (cross-site WebSocket hijacking), though the route's CORS policy lists the origins it serves.
    /// </summary>
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task AWebSocketHandshake_FromAnOriginThePolicyDoesNotAllow_Gets403_AndNeverReachesTheBackend(string version)
    {
        await using var backend = await YarpGateway.Tests.WebSockets.EchoWebSocketBackend.StartAsync();
        var config = backend.Config(
            ("chat", new JsonObject { ["CorsPolicy"] = "web", ["Match"] = new JsonObject { ["Path"] = "/chat/{**rest}" } }),
            ("open", new JsonObject { ["Match"] = new JsonObject { ["Path"] = "/open/{**rest}" } }));
        config["Gateway"] = JsonNode.Parse($$"""{ "Cors": { "Policies": { "web": { "Origins": [ "{{App}}" ] } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Task<HttpStatusCode> HandshakeAsync(string path, string? origin) => YarpGateway.Tests.WebSockets.WebSocketHandshake.StatusAsync(gateway, version, path, bound.Token, origin: origin);

        var opened = YarpGateway.Tests.WebSockets.WebSocketHandshake.Opened(version);
        Assert.Equal(HttpStatusCode.Forbidden, await HandshakeAsync("/chat/x", "https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await HandshakeAsync("/chat/x", "null")); // a sandboxed page
        Assert.Equal(0, backend.Accepted);
        Assert.Equal(opened, await HandshakeAsync("/chat/x", App));
        Assert.Equal(opened, await HandshakeAsync("/chat/x", "http://" + gateway.ProxyAddress.Authority)); // a page the gateway served
        Assert.Equal(opened, await HandshakeAsync("/chat/x", null)); // not a browser
        Assert.Equal(opened, await HandshakeAsync("/open/x", "https://evil.example")); // no policy on the route: no opinion
        Assert.Equal(4, backend.Accepted);
        Assert.Equal(2, gateway.Counter("gateway.cors.websocket_refused|route=chat"));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[WebSocketOriginRefused]", StringComparison.Ordinal) && l.Contains("'https://evil.example'", StringComparison.Ordinal));
    }

    /// <summary>
    /// The global limit refuses before routing: its 503 had no CORS header, and a browser hid it from the page (a network
    /// error where a route limit's 503 gave the status). A browser's request now gets its route's headers, and goes no
    /// further: no 401 for a missing token, nothing to the backend.
    /// </summary>
    [Fact]
    public async Task ARequestTheGlobalLimitRefuses_GetsItsRoutesCorsHeaders_AndGoesNoFurther()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "web";
        config["ReverseProxy"]!["Routes"]!["all"]!["AuthorizationPolicy"] = "Default";
        config["Authentication"] = tokens.Section();
        config["Gateway"] = JsonNode.Parse($$"""{ "Cors": { "Policies": { "web": { "Origins": [ "{{App}}" ] } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config, "--Gateway:Admission:Global:MaxConcurrency=1", "--Gateway:Admission:Global:MaxQueue=0");
        using var client = gateway.CreateProxyClient();
        using var hold = new HttpRequestMessage(HttpMethod.Get, "/hold");
        hold.Headers.Authorization = new("Bearer", tokens.Mint());
        var held = client.SendAsync(hold);
        Assert.True(await Eventually.TrueAsync(() => backend.Held == 1, TimeSpan.FromSeconds(10)));

        foreach (var (origin, allowed) in new[] { (App, true), ("https://evil.example.com", false), (null, false) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x");
            if (origin is not null)
            {
                request.Headers.Add("Origin", origin);
            }

            using var refused = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode); // not 401: refused before the token is read
            Assert.True(refused.Headers.RetryAfter is not null);
            Assert.Equal(allowed, refused.Headers.Contains("Access-Control-Allow-Origin")); // it was false for the page's own origin
            Assert.StartsWith("gateway: too busy", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal); // written after the policy's headers, carried or not
        }

        // A preflight is the policy's to answer, so that the browser sends the request and sees its 503.
        using (var preflight = await client.SendAsync(Preflight(App, "GET")))
        {
            Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
            Assert.Equal(App, Assert.Single(preflight.Headers.GetValues("Access-Control-Allow-Origin")));
            Assert.Null(preflight.Headers.RetryAfter);
        }

        Assert.Equal(1, backend.Requests);
        Assert.Equal(4, gateway.Counter("gateway.admission.rejected|limit=global|name=global|reason=queue_full"));
        backend.Gate.SetResult();
        using var first = await held.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
    }

    [Theory]
    [InlineData("https://gw.example", "gw.example", true)]
    [InlineData("https://GW.example", "gw.example:443", true)]
    [InlineData("http://gw.example:8080", "gw.example:8080", true)]
    [InlineData("http://gw.example:8080", "gw.example:9090", false)]
    [InlineData("https://gw.example.evil.test", "gw.example", false)]
    [InlineData("null", "gw.example", false)]
    [InlineData("https://gw.example", "", false)]
    public void ASameOriginHandshake_IsTheRequestsOwnHost(string origin, string host, bool same)
        => Assert.Equal(same, YarpGateway.Cors.WebSocketOriginCheck.IsSameOrigin(origin, new Microsoft.AspNetCore.Http.HostString(host)));

    [Fact]
    public async Task APreflight_IsAnsweredByTheGateway_AllowedForTheOrigin_WithoutAToken()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, new TestTokens());
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Preflight(App, "POST"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal(App, Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Contains("POST", string.Join(",", response.Headers.GetValues("Access-Control-Allow-Methods")), StringComparison.Ordinal);
        Assert.Equal("600", Assert.Single(response.Headers.GetValues("Access-Control-Max-Age")));
        Assert.Equal(0, backend.Requests);
    }

    [Theory]
    [InlineData("https://evil.example.com", "POST")]
    [InlineData(App, "DELETE")]
    public async Task APreflight_ForAForeignOriginOrMethod_GetsNoAllowHeaders(string origin, string method)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, new TestTokens());
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Preflight(origin, method));

        if (origin != App)
        {
            Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
        }
        else
        {
            // ASP.NET Core lists what is allowed; the browser refuses a method not listed.
            var methods = response.Headers.TryGetValues("Access-Control-Allow-Methods", out var values) ? string.Join(",", values) : string.Empty;
            Assert.DoesNotContain(method, methods, StringComparison.OrdinalIgnoreCase);
        }

        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task AnActualRequest_CarriesTheAllowHeaders_OnlyForAnAllowedOrigin()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, tokens);
        using var client = gateway.CreateProxyClient();

        foreach (var (origin, allowed) in new[] { (App, true), ("https://evil.example.com", false) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/x") { Headers = { { "Origin", origin } } };
            request.Headers.Authorization = new("Bearer", tokens.Mint());
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(allowed, response.Headers.Contains("Access-Control-Allow-Origin"));
            if (allowed)
            {
                Assert.Equal("X-Request-Id", Assert.Single(response.Headers.GetValues("Access-Control-Expose-Headers")));
            }
        }
    }

    // Before: compared as text, an origin written with its scheme's default port matched no browser's Origin (browsers
    // leave the default port out), and every cross-origin request from that page failed in the browser.
    [Theory]
    [InlineData("https://app.example:443", "https://app.example", true)]
    [InlineData("http://app.example:80", "http://app.example", true)]
    [InlineData("http://[::1]:80", "http://[::1]", true)]
    [InlineData("https://App.Example", "https://app.example", true)]
    [InlineData("https://app.example:8443", "https://app.example:8443", true)]
    [InlineData("https://app.example:8443", "https://app.example", false)]
    [InlineData("http://app.example:443", "http://app.example", false)]
    public void AnOriginWrittenWithItsDefaultPort_AllowsTheOriginBrowsersSend(string configured, string sent, bool allowed)
    {
        var policy = YarpGateway.Cors.GatewayCorsPolicyProvider.Build(new YarpGateway.Cors.CorsPolicySettings { Origins = [configured] });
        Assert.Equal(allowed, policy.IsOriginAllowed(sent));
    }

    [Fact]
    public async Task APolicyNamedDefault_IsWhatARoutesDefaultUses()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "Default";
        config["Gateway"] = JsonNode.Parse("""{ "Cors": { "Policies": { "Default": { "Origins": [ "*" ] } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        using var response = await client.SendAsync(Preflight("https://anywhere.example.com", "GET"));

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("*", Assert.Single(response.Headers.GetValues("Access-Control-Allow-Origin")));
    }

    [Fact]
    public async Task AnOriginAdded_OrAPolicyAndARouteNamingIt_ApplyToTheNextPreflight_WithoutARestart()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = WebPolicyOnEveryRoute(backend);
        await using var gateway = await StartAsync(config);
        using var client = gateway.CreateProxyClient();
        const string Added = "https://new.example.com", Partner = "https://partner.example.com";
        using (var before = await client.SendAsync(Preflight(Added, "POST")))
        {
            Assert.False(before.Headers.Contains("Access-Control-Allow-Origin"));
        }

        config["Gateway"]!["Cors"]!["Policies"]!["web"]!["Origins"]!.AsArray().Add(Added);
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains($"[OptionsReloaded] Gateway:Cors reloaded. Changed: Policies:web:Origins:1: added ('{Added}')", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)),
            string.Join("\n", gateway.Logs.Lines));
        using (var after = await client.SendAsync(Preflight(Added, "POST")))
        {
            Assert.Equal(Added, Assert.Single(after.Headers.GetValues("Access-Control-Allow-Origin")));
        }

        // A new policy and a route naming it, saved together: one valid edit.
        config["Gateway"]!["Cors"]!["Policies"]!["partner"] = JsonNode.Parse($$"""{ "Origins": [ "{{Partner}}" ] }""");
        config["ReverseProxy"]!["Routes"]!["partner"] = JsonNode.Parse("""{ "ClusterId": "c1", "CorsPolicy": "partner", "Match": { "Path": "/partner/{**rest}" } }""");
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(() => AllowsAsync(client, Partner, "/partner/x"), TimeSpan.FromSeconds(10)), string.Join("\n", gateway.Logs.Lines));
        using (var web = await client.SendAsync(Preflight(Partner, "POST")))
        {
            Assert.False(web.Headers.Contains("Access-Control-Allow-Origin")); // the other route's policy is its own
        }

        Assert.Equal(0, gateway.Counter("gateway.config.reloads|result=rejected"));
        Assert.Equal(0, backend.Requests);
    }

    [Fact]
    public async Task WithNoPolicyAtStart_TheFirstOneTakesARestart_AndSaysSo()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        await using var gateway = await StartAsync(config);

        config["Gateway"] = JsonNode.Parse($$"""{ "Cors": { "Policies": { "web": { "Origins": [ "{{App}}" ] } } } }""");
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "web";
        gateway.WriteConfig(config);

        Assert.True(await Eventually.TrueAsync(
            () => gateway.Logs.Lines.Any(l => l.Contains("no CORS policies were configured under Gateway:Cors:Policies at start-up", StringComparison.Ordinal))
                && gateway.Logs.Lines.Any(l => l.Contains("[SectionNeedsRestart] Gateway:Cors (whether it has any policy) changed", StringComparison.Ordinal) && l.Contains("Changed: Policies: added ('defined').", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10)), string.Join("\n", gateway.Logs.Lines));
        using var client = gateway.CreateProxyClient();
        using var response = await client.GetAsync("/x");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode); // the last good routes keep serving
    }

    [Fact]
    public async Task ACorsSectionThatDoesNotBind_IsRejectedOnItsOwn_AndRoutesNamingItsPoliciesStillReload()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = WebPolicyOnEveryRoute(backend);
        await using var gateway = await StartAsync(config);
        using var client = gateway.CreateProxyClient();

        config["Gateway"]!["Cors"]!["Policies"]!["web"]!["Credentials"] = "maybe";
        config["ReverseProxy"]!["Routes"]!["other"] = JsonNode.Parse("""{ "ClusterId": "c1", "CorsPolicy": "web", "Match": { "Path": "/other/{**rest}" } }""");
        gateway.WriteConfig(config);

        Assert.True(await Eventually.TrueAsync(() => AllowsAsync(client, App, "/other/x"), TimeSpan.FromSeconds(10)), string.Join("\n", gateway.Logs.Lines));
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains($"[OptionsReloadRejected] Gateway:Cors reload rejected; the previous settings stay in force. {gateway.ConfigPath}: Gateway:Cors:Policies:web:Credentials: 'maybe' is not", StringComparison.Ordinal)), TimeSpan.FromSeconds(5)),
            string.Join("\n", gateway.Logs.Lines));
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("is not a policy under Gateway:Cors:Policies", StringComparison.Ordinal));
    }

    private static Task<GatewayUnderTest> StartAsync(JsonObject config) => GatewayUnderTest.StartAsync(config);

    /// <summary>A catch-all route to <paramref name="backend"/> with the policy <c>web</c>, which allows <see cref="App"/>.</summary>
    private static JsonObject WebPolicyOnEveryRoute(TestBackend backend)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "web";
        config["Gateway"] = JsonNode.Parse($$"""{ "Cors": { "Policies": { "web": { "Origins": [ "{{App}}" ] } } } }""");
        return config;
    }

    /// <summary>Whether a preflight from <paramref name="origin"/> to <paramref name="path"/> is allowed (its origin echoed).</summary>
    private static async Task<bool> AllowsAsync(HttpClient client, string origin, string path)
    {
        using var response = await client.SendAsync(Preflight(origin, "POST", path));
        return response.Headers.TryGetValues("Access-Control-Allow-Origin", out var origins) && origins.Single() == origin;
    }
}
