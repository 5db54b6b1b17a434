using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>JWT bearer authentication and route authorization, over real sockets, with tokens minted here.</summary>
public class AuthenticationTests
{
    private static JsonObject Config(TestTokens tokens, TestBackend backend)
    {
        var config = ProxyConfigJson.Config(
            [("open", "/open/{**rest}", "c"), ("any", "/any/{**rest}", "c"), ("write", "/write/{**rest}", "c")],
            [("c", "RoundRobin", [(backend, null)])]);
        var routes = config["ReverseProxy"]!["Routes"]!;
        routes["any"]!["AuthorizationPolicy"] = "Default";
        routes["write"]!["AuthorizationPolicy"] = "orders-write";
        routes["write"]!["Transforms"] = new JsonArray(new JsonObject { ["RequestHeaderFromClaim"] = "X-User-Id", ["Claim"] = "sub" });
        config["Authentication"] = tokens.Section();
        config["Gateway"] = new JsonObject
        {
            ["Authorization"] = JsonNode.Parse("""{ "Policies": { "orders-write": { "RequireScopes": [ "orders.write" ], "RequireClaims": { "tenant": [ "a", "b" ] } } } }"""),
        };
        return config;
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient client, string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return await client.SendAsync(request);
    }

    [Fact]
    public async Task MissingOrInvalidTokens_Get401WithWwwAuthenticate_AndNeverReachTheBackend()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(tokens, backend));
        using var client = gateway.CreateProxyClient();

        var cases = new (string Name, string? Token, string Reason)[]
        {
            ("missing", null, "missing"),
            ("forged", tokens.Mint(key: RandomNumberGenerator.GetBytes(32)), "bad_signature"),
            ("expired", tokens.Mint(expires: DateTime.UtcNow.AddMinutes(-10)), "expired"),
            ("wrong audience", tokens.Mint(audience: "billing-api"), "wrong_audience"),
            ("wrong issuer", tokens.Mint(issuer: "https://evil.test/"), "wrong_issuer"),
            ("garbage", "not.a.token", "malformed"),
        };
        foreach (var (name, token, reason) in cases)
        {
            using var response = await GetAsync(client, "/any/x", token);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{name}: {(int)response.StatusCode}");
            Assert.Equal("Bearer", Assert.Single(response.Headers.WwwAuthenticate).Scheme);
            Assert.True(gateway.Counter($"gateway.auth.refused|route=any|status=401|reason={reason}") == 1,
                $"{name}: {gateway.DescribeCounters("gateway.auth.refused")}");
        }

        Assert.Equal(0, backend.Requests);
    }

    /// <summary>
    /// A browser's WebSocket API and its EventSource send no Authorization header; SignalR's JavaScript client puts the
    /// token in <c>access_token</c> instead. Before, a route with an AuthorizationPolicy answered 401 to every such handshake.
    /// </summary>
    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task ARoutesTokenQueryParameter_AuthenticatesABrowsersWebSocketAndEventStream_AndNoOtherRequest(string version)
    {
        var tokens = new TestTokens();
        await using var backend = await YarpGateway.Tests.WebSockets.EchoWebSocketBackend.StartAsync();
        var config = backend.Config(("hub", new JsonObject
        {
            ["AuthorizationPolicy"] = "Default",
            ["Metadata"] = new JsonObject { ["TokenQueryParameter"] = "access_token" },
        }));
        config["Authentication"] = tokens.Section();
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Task<HttpStatusCode> HandshakeAsync(string query) => YarpGateway.Tests.WebSockets.WebSocketHandshake.StatusAsync(gateway, version, "/hub", bound.Token, query);

        Assert.Equal(YarpGateway.Tests.WebSockets.WebSocketHandshake.Opened(version), await HandshakeAsync("id=1&access_token=" + tokens.Mint()));
        Assert.Equal(HttpStatusCode.Unauthorized, await HandshakeAsync("id=1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await HandshakeAsync("access_token=" + tokens.Mint(expires: DateTime.UtcNow.AddMinutes(-10))));
        Assert.Equal(HttpStatusCode.Unauthorized, await HandshakeAsync("access_token=" + tokens.Mint() + "&access_token=" + tokens.Mint())); // which one?
        Assert.Equal(1, backend.Accepted);

        using var client = gateway.CreateProxyClient();
        async Task<HttpStatusCode> GetAsync(string accept)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/hub?access_token=" + tokens.Mint());
            request.Headers.Accept.ParseAdd(accept);
            using var response = await client.SendAsync(request, bound.Token);
            return response.StatusCode;
        }

        // An ordinary request must carry its token in the header; an event stream may carry it in the query. (The echo
        // backend answers 400 to anything but a WebSocket: that 400 is the request having got through.)
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync("application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, await GetAsync("text/event-stream"));
    }

    [Theory]
    [InlineData("Anonymous", "access_token", "is on a route without authentication")]
    [InlineData("Default", "access token", "is not a query parameter name")]
    [InlineData("Default", "", "is not a query parameter name")]
    public async Task ATokenQueryParameter_IsRefused_OffAnAuthenticatingRouteOrWhenItIsNoName(string policy, string parameter, string message)
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var config = Config(tokens, backend);
        config["ReverseProxy"]!["Routes"]!["any"]!["AuthorizationPolicy"] = policy;
        config["ReverseProxy"]!["Routes"]!["any"]!["Metadata"] = new JsonObject { ["TokenQueryParameter"] = parameter };

        var ex = await Assert.ThrowsAsync<GatewayConfigurationException>(() => GatewayUnderTest.StartAsync(config));

        var error = Assert.Single(ex.Errors);
        Assert.Equal("ReverseProxy:Routes:any:Metadata:TokenQueryParameter", error.Key);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AValidToken_PassesDefault_AndANamedPolicyChecksScopesAndClaims()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(tokens, backend));
        using var client = gateway.CreateProxyClient();

        using (var response = await GetAsync(client, "/any/x", tokens.Mint()))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var noScope = tokens.Mint(new Dictionary<string, object> { ["sub"] = "u", ["tenant"] = "a", ["scope"] = "orders.read" });
        var wrongTenant = tokens.Mint(new Dictionary<string, object> { ["sub"] = "u", ["tenant"] = "c", ["scope"] = "orders.read orders.write" });
        foreach (var token in new[] { noScope, wrongTenant })
        {
            using var response = await GetAsync(client, "/write/x", token);
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }

        Assert.Equal(1, backend.Requests); // the refused ones never reached it
        Assert.Equal(2, gateway.Counter("gateway.auth.refused|route=write|status=403|reason=forbidden"));

        var spaceSeparated = tokens.Mint(new Dictionary<string, object> { ["sub"] = "u", ["tenant"] = "b", ["scope"] = "orders.read orders.write" });
        var scpArray = tokens.Mint(new Dictionary<string, object> { ["sub"] = "u", ["tenant"] = "a", ["scp"] = new[] { "orders.write" } });
        foreach (var token in new[] { spaceSeparated, scpArray })
        {
            using var response = await GetAsync(client, "/write/x", token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task TheIdentityHeader_IsTheTokensClaim_NeverTheClients()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(Config(tokens, backend));
        using var client = gateway.CreateProxyClient();

        var token = tokens.Mint(new Dictionary<string, object> { ["sub"] = "alice", ["tenant"] = "a", ["scope"] = "orders.write" });
        using var request = new HttpRequestMessage(HttpMethod.Get, "/write/x");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        request.Headers.Add("X-User-Id", "mallory");
        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var headers = Assert.Single(backend.RequestHeaders);
        Assert.Equal("alice", headers["X-User-Id"]);
    }

    [Fact]
    public async Task AnOpenRoute_DoesNotReadTokens_AndForwardsThem()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var read = 0;
        await using var gateway = await GatewayUnderTest.StartAsync(Config(tokens, backend), services =>
            services.PostConfigure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, options =>
            {
                var received = options.Events.OnMessageReceived;
                options.Events.OnMessageReceived = context =>
                {
                    Interlocked.Increment(ref read);
                    return received(context);
                };
            }));
        using var client = gateway.CreateProxyClient();

        using (var response = await GetAsync(client, "/open/x", "not.a.token"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal("Bearer not.a.token", Assert.Single(backend.RequestHeaders)["Authorization"]);
        Assert.Equal(0, Volatile.Read(ref read));
        Assert.Equal(0, gateway.CounterSum("gateway.auth.refused"));

        using (var response = await GetAsync(client, "/any/x", "not.a.token"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        Assert.Equal(1, Volatile.Read(ref read)); // the count works: a protected route reads the token
    }

    [Fact]
    public async Task BehindAuthorization_RetriesAndRouteLimitsKeepWorking()
    {
        var tokens = new TestTokens();
        await using var live = await TestBackend.StartAsync("a");
        await using var dead = await TestBackend.StartAsync("b");
        await dead.KillAsync();
        var config = ProxyConfigJson.CatchAll("RoundRobin", (live, null), (dead, null));
        var route = config["ReverseProxy"]!["Routes"]!["all"]!;
        route["AuthorizationPolicy"] = "Default";
        route["Metadata"] = new JsonObject { ["MaxConcurrency"] = "1", ["MaxQueue"] = "0" };
        config["Authentication"] = tokens.Section();
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        var token = tokens.Mint();

        // Half the picks go to the dead destination first: every GET still succeeds, by a retry.
        for (var i = 0; i < 6; i++)
        {
            using var response = await GetAsync(client, "/x", token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.True(gateway.CounterSum("gateway.proxy.retries") >= 1, gateway.DescribeCounters("gateway.proxy"));

        // The route's limit of one: a second request while one is held gets 503.
        var held = GetAsync(client, "/hold", token);
        Assert.True(await Eventually.TrueAsync(() => live.Held == 1, TimeSpan.FromSeconds(10)));
        using (var second = await GetAsync(client, "/x", token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
        }

        live.Gate.SetResult();
        using var first = await held;
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
    }

    [Fact]
    public async Task OneTokenOnManyConcurrentRequests_IsKeptOnce_AndEveryRequestSeesItsClaims()
    {
        var tokens = new TestTokens();
        await using var backend = await TestBackend.StartAsync("a");
        var validated = 0;
        await using var gateway = await GatewayUnderTest.StartAsync(Config(tokens, backend), services =>
            services.PostConfigure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, options =>
            {
                var validatedEvent = options.Events.OnTokenValidated;
                options.Events.OnTokenValidated = context =>
                {
                    Interlocked.Increment(ref validated);
                    return validatedEvent(context);
                };
            }));
        using var client = gateway.CreateProxyClient();
        var token = tokens.Mint(new Dictionary<string, object> { ["sub"] = "alice", ["tenant"] = "a", ["scope"] = "orders.write" });
        using (var first = await GetAsync(client, "/write/x", token))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode); // validated and remembered
        }

        var statuses = await Task.WhenAll(Enumerable.Range(0, 200).Select(async _ =>
        {
            using var response = await GetAsync(client, "/write/x", token);
            return response.StatusCode;
        }));

        Assert.All(statuses, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(201, backend.RequestHeaders.Count(h => h.TryGetValue("X-User-Id", out var user) && user == "alice"));
        var handler = gateway.Services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme).TokenHandlers;
        Assert.IsType<YarpGateway.Security.ValidatedTokenCache>(Assert.Single(handler));
        Assert.Equal(1, ((YarpGateway.Security.ValidatedTokenCache)handler[0]).Count);
        Assert.Equal(201, Volatile.Read(ref validated)); // the event still runs per request; the signature check does not
    }
}
