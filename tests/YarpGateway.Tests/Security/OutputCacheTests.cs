using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Security;

/// <summary>A route's output cache: repeated GETs served by the gateway; the backend's Cache-Control has the last word.</summary>
public class OutputCacheTests
{
    [Fact]
    public async Task RepeatedGets_ReachTheBackendOncePerQuery_ButAPrivateResponseIsNeverStored()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        foreach (var path in new[] { "/page", "/page", "/page?x=1", "/page?x=1", "/private", "/private" })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("a", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(4, backend.Requests); // /page once, /page?x=1 once, /private twice
    }

    [Fact]
    public async Task APolicyThatVariesByNamedQueryParameters_SharesOneEntryAcrossTheOthers()
    {
        // What a route does against cache-busting query strings: only the named parameters make entries.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00", "VaryByQuery": [ "id" ] }""");
        using var client = gateway.CreateProxyClient();

        foreach (var path in new[] { "/page?id=1&bust=1", "/page?id=1&bust=2", "/page?bust=3&id=1", "/page?id=2&bust=1" })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(2, backend.Requests); // id=1 once, id=2 once
    }

    [Fact]
    public async Task AStreamOfEvents_IsNeverStored_ItsEventsAreNotReplayed()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        Assert.Equal("data: 1\n\n", await client.GetStringAsync("/events"));
        Assert.Equal("data: 2\n\n", await client.GetStringAsync("/events"));
        Assert.Equal(2, backend.Requests);
    }

    [Theory]
    [InlineData(1024, null, true)]
    [InlineData(1024, "text/html", true)]
    [InlineData(1024 * 1024, null, true)] // MaximumBodySize itself
    [InlineData(1024 * 1024 + 1, null, false)]
    [InlineData(null, "text/event-stream", false)]
    [InlineData(null, "Text/Event-Stream; charset=utf-8", false)]
    public void AResponseKnownFromItsHeadersNeverToBeStored_IsNotCopiedWhileItIsSent(int? contentLength, string? contentType, bool stored)
    {
        // Judged before the body, AllowCacheStorage = false turns the cache's copy of the body off before its first byte.
        var policy = new YarpGateway.OutputCaching.BackendCacheControlPolicy(
            new YarpGateway.OutputCaching.OutputCacheLog(Microsoft.Extensions.Logging.Abstractions.NullLogger<YarpGateway.OutputCaching.OutputCacheLog>.Instance),
            Microsoft.Extensions.Options.Options.Create(new YarpGateway.OutputCaching.GatewayOutputCacheOptions()));
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Response.ContentLength = contentLength;
        http.Response.ContentType = contentType;
        var context = new Microsoft.AspNetCore.OutputCaching.OutputCacheContext { HttpContext = http, AllowCacheStorage = true };

        policy.Judge(context);

        Assert.Equal(stored, context.AllowCacheStorage);
    }

    [Fact]
    public async Task AClientOfAURLWhoseResponseIsStillBeingSent_IsNotHeldBehindIt()
    {
        // ASP.NET Core's default makes a miss wait for the whole response of the request fetching the same entry: behind
        // an event stream, a long poll or a slow client's download, every other client of the URL waited.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        using var first = await client.GetAsync("/stream", HttpCompletionOption.ResponseHeadersRead);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var second = await client.GetAsync("/stream", HttpCompletionOption.ResponseHeadersRead, bound.Token);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal(2, backend.Requests);
        backend.GateFor("stream").SetResult();
    }

    [Fact]
    public async Task WithLocking_AMissWaitsForTheRequestFetchingItsEntry_AndIsAnsweredFromIt()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00", "Locking": true }""");
        using var client = gateway.CreateProxyClient();

        using var first = await client.GetAsync("/stream", HttpCompletionOption.ResponseHeadersRead);
        var second = client.GetStringAsync("/stream");

        // Once the second request has missed, it either waits for the first (locking) or goes to the backend itself.
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter("gateway.output_cache.lookups|result=miss") == 2, TimeSpan.FromSeconds(10)));
        backend.GateFor("stream").SetResult();
        Assert.Equal("a", await first.Content.ReadAsStringAsync());
        Assert.Equal("a", await second.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, backend.Requests);
    }

    [Fact]
    public async Task ARequestForAnEventStream_SkipsTheCache_EvenWithLocking()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00", "Locking": true }""");
        using var client = gateway.CreateProxyClient();
        HttpRequestMessage EventSource()
        {
            var request = new HttpRequestMessage(HttpMethod.Get, "/stream");
            request.Headers.Accept.ParseAdd("text/event-stream");
            return request;
        }

        using var first = await client.SendAsync(EventSource(), HttpCompletionOption.ResponseHeadersRead);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var second = await client.SendAsync(EventSource(), HttpCompletionOption.ResponseHeadersRead, bound.Token);
        Assert.Equal(2, backend.Requests);
        Assert.Equal(0, gateway.Counter("gateway.output_cache.lookups|result=miss"));
        backend.GateFor("stream").SetResult();
    }

    [Theory]
    [InlineData("1.1")]
    [InlineData("2.0")]
    public async Task AWebSocketHandshake_SkipsTheCache_SoWithLockingASecondClientIsNotHeldBehindTheFirstsSocket(string version)
    {
        // An HTTP/1.1 handshake is a GET like any other to ASP.NET Core's cache: with Locking, the second client's handshake
        // to the same URL waited for the first one's "response" to end, which is its WebSocket's close.
        await using var backend = await YarpGateway.Tests.WebSockets.EchoWebSocketBackend.StartAsync();
        var config = backend.Config(("all", new JsonObject { ["OutputCachePolicy"] = "short" }));
        config["Gateway"] = JsonNode.Parse("""{ "OutputCache": { "Policies": { "short": { "Duration": "00:05:00", "Locking": true } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        async Task<System.Net.WebSockets.ClientWebSocket> OpenAndEchoAsync(string text)
        {
            var socket = new System.Net.WebSockets.ClientWebSocket();
            socket.Options.HttpVersion = Version.Parse(version);
            socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            await socket.ConnectAsync(new UriBuilder(gateway.ProxyAddress) { Scheme = "ws", Path = "/chat" }.Uri, new HttpMessageInvoker(new SocketsHttpHandler()), bound.Token);
            await socket.SendAsync(System.Text.Encoding.UTF8.GetBytes(text), System.Net.WebSockets.WebSocketMessageType.Text, endOfMessage: true, bound.Token);
            var buffer = new byte[64];
            var received = await socket.ReceiveAsync(buffer, bound.Token);
            Assert.Equal(text, System.Text.Encoding.UTF8.GetString(buffer, 0, received.Count));
            return socket;
        }

        using var first = await OpenAndEchoAsync("first");
        using var second = await OpenAndEchoAsync("second"); // while the first is open

        Assert.Equal(2, backend.Accepted);
        Assert.Equal(0, gateway.CounterSum("gateway.output_cache.lookups|"));
    }

    [Fact]
    public async Task Lookups_AreCountedByResult_AndTheEntriesWithTheirBytes()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        foreach (var path in new[] { "/page?x=1", "/page?x=1", "/page?x=1", "/page?x=2" })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(2, gateway.Counter("gateway.output_cache.lookups|result=hit"));
        Assert.Equal(2, gateway.Counter("gateway.output_cache.lookups|result=miss"));
        var (entries, bytes, _, _) = gateway.Services.GetRequiredService<YarpGateway.OutputCaching.OutputCacheMemoryStore>().Read();
        Assert.Equal(2, entries);
        Assert.InRange(bytes, 2 * YarpGateway.OutputCaching.OutputCacheMemoryStore.EntryOverheadBytes, 2_000);
    }

    [Fact]
    public async Task AResponseThatVariesByAHeaderThePolicyDoesNotVaryBy_IsNotStored_AndTheRouteIsNamedOnce()
    {
        // A backend that compresses by Accept-Encoding (or translates by Accept-Language) says so with Vary: a
        // cache keyed on the path alone would serve one client's variant to every other client.
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        foreach (var (path, language) in new[] { ("/vary/Accept-Language", "fr"), ("/vary/Accept-Language", "de"), ("/vary/Accept-Language", "de"), ("/vary/*", "fr"), ("/vary/*", "de") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.Add("Accept-Language", language);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(path.EndsWith('*') ? "a " : $"a {language}", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(5, backend.Requests); // nothing was stored
        var lines = gateway.Logs.Lines.Where(m => m.Contains("Vary", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, lines.Count); // once for Accept-Language, once for *, not once per response
        Assert.Contains(lines, l => l.Contains("route 'all'", StringComparison.Ordinal) && l.Contains("'Accept-Language'", StringComparison.Ordinal) && l.Contains("'short'", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AResponseThatVariesByAHeaderThePolicyVariesBy_IsStoredPerValue()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00", "VaryByHeader": [ "accept-language" ] }""");
        using var client = gateway.CreateProxyClient();

        foreach (var language in new[] { "fr", "de", "fr", "de" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/vary/Accept-Language");
            request.Headers.Add("Accept-Language", language);
            using var response = await client.SendAsync(request);
            Assert.Equal($"a {language}", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(2, backend.Requests); // one entry per language
    }

    [Theory]
    // A backend that builds a page from a session cookie without saying Cache-Control: private: carol's page must not
    // be served to dave, nor to a client with no cookie. Requests with cookies skip the cache; requests without share it.
    [InlineData("""{ "Duration": "00:05:00" }""", 4, 3)]
    // Told the answers do not depend on cookies, every request shares the one entry.
    [InlineData("""{ "Duration": "00:05:00", "CacheRequestsWithCookies": true }""", 1, 1)]
    // Keyed on the Cookie header: one entry per value (carol, dave, and none).
    [InlineData("""{ "Duration": "00:05:00", "VaryByHeader": [ "cookie" ] }""", 3, 2)]
    public async Task ARequestWithACookie_SkipsTheCache_UnlessThePolicySaysCookiesDoNotMatterOrKeysOnThem(string settings, int expectedAtBackend, int withCookieAtBackend)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", settings);
        using var client = gateway.CreateProxyClient();

        foreach (var cookie in new[] { "session=carol", "session=carol", "session=dave", null, null })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/account");
            if (cookie is not null)
            {
                request.Headers.Add("Cookie", cookie);
            }

            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.True(expectedAtBackend == backend.Requests, string.Join(" | ", backend.RequestHeaders.Select(h => h.GetValueOrDefault("Cookie") ?? "-")));
        Assert.Equal(withCookieAtBackend, backend.RequestHeaders.Count(h => h.ContainsKey("Cookie")));
        var lines = gateway.Logs.Lines.Where(m => m.Contains("[OutputCacheCookiesSkipped]", StringComparison.Ordinal)).ToList();
        if (expectedAtBackend == 4)
        {
            var line = Assert.Single(lines); // once for the route, not once per request
            Assert.Contains("route 'all'", line, StringComparison.Ordinal);
            Assert.Contains("policy 'short'", line, StringComparison.Ordinal);
        }
        else
        {
            Assert.Empty(lines);
        }
    }

    [Theory]
    [InlineData("Accept-Encoding", "", "Accept-Encoding")]
    [InlineData("Accept-Encoding", "accept-encoding", null)]
    [InlineData(" accept-encoding ,Accept-Language", "Accept-Encoding", "Accept-Language")]
    [InlineData("Accept-Encoding, Accept-Language", "Accept-Language,Accept-Encoding", null)]
    [InlineData("*", "Accept-Encoding", "*")]
    [InlineData(" , ", "", null)]
    public void FirstUnkeyedVary_NamesTheFirstHeaderThePolicyDoesNotKeyOn(string vary, string keyed, string? expected)
    {
        var keys = new Microsoft.Extensions.Primitives.StringValues(keyed.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.Equal(expected, YarpGateway.OutputCaching.BackendCacheControlPolicy.FirstUnkeyedVary(vary, keys));
    }

    [Fact]
    public async Task TheBackendsMaxAge_SetsHowLongAnEntryIsServed_AndZeroIsNotStored()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "long", """{ "Duration": "01:00:00" }""");
        using var client = gateway.CreateProxyClient();
        async Task GetAsync(string path)
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // max-age=0, and s-maxage=0 (which a shared cache obeys over max-age): never stored.
        foreach (var path in new[] { "/cache-control/max-age=0", "/cache-control/max-age=0", "/cache-control/max-age=60,s-maxage=0", "/cache-control/max-age=60,s-maxage=0" })
        {
            await GetAsync(path);
        }

        Assert.Equal(4, backend.Requests);

        // max-age=2: stored, then fetched again once it is stale, long before the policy's hour.
        await GetAsync("/cache-control/max-age=2");
        await GetAsync("/cache-control/max-age=2");
        Assert.Equal(5, backend.Requests);
        Assert.True(await Eventually.TrueAsync(async () =>
        {
            await GetAsync("/cache-control/max-age=2");
            return backend.Requests == 6;
        }, TimeSpan.FromSeconds(15)));
    }

    [Theory]
    [InlineData("public, max-age=60", "", 60)]
    [InlineData("max-age=60, s-maxage=10", "", 10)]
    [InlineData("max-age=60", "15", 45)]
    [InlineData("max-age=60", "90", 0)]
    [InlineData("max-age=0", "", 0)]
    [InlineData("public", "", null)]
    [InlineData("max-age=abc", "", null)]
    public void Freshness_IsSharedMaxAge_ElseMaxAge_LessAge(string cacheControl, string age, int? expectedSeconds)
    {
        var lifetime = YarpGateway.OutputCaching.BackendCacheControlPolicy.Freshness(cacheControl, age.Length > 0 ? age : default(Microsoft.Extensions.Primitives.StringValues));
        Assert.Equal(expectedSeconds is { } s ? TimeSpan.FromSeconds(s) : null, lifetime);
    }

    [Fact]
    public async Task ALargeBody_GoesThroughTheSlowClientGate_AndIsStoredWhole()
    {
        // Over 64 KiB, the body is written through the response gate into the output cache's stream.
        const int Length = 300_000;
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        for (var i = 0; i < 3; i++)
        {
            var body = await client.GetByteArrayAsync($"/bytes/{Length}");
            Assert.True(TestBackend.Alphabet(Length).AsSpan().SequenceEqual(body), $"response {i} changed");
        }

        Assert.Equal(1, backend.Requests);
    }

    [Fact]
    public async Task APolicysVaryList_Reloads_AndAPolicyAddedSaysItTakesARestart()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = "short";
        config["Gateway"] = JsonNode.Parse("""{ "OutputCache": { "Policies": { "short": { "Duration": "00:05:00", "VaryByQuery": [ "id" ] } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        await GetAllAsync(client, "/page?id=1&bust=1", "/page?id=1&bust=2");
        Assert.Equal(1, backend.Requests);

        config["Gateway"]!["OutputCache"]!["Policies"]!["short"]!["VaryByQuery"] = new JsonArray();
        config["Gateway"]!["OutputCache"]!["Policies"]!["other"] = JsonNode.Parse("""{ "Duration": "00:00:10" }""");
        gateway.WriteConfig(config);
        Assert.True(await Eventually.TrueAsync(
            () => gateway.Logs.Lines.Any(l => l.Contains("[OptionsReloaded] Gateway:OutputCache reloaded. Changed: Policies:short:VaryByQuery: removed ('id').", StringComparison.Ordinal))
                && gateway.Logs.Lines.Any(l => l.Contains("[SectionNeedsRestart] Gateway:OutputCache (which policies exist, SizeLimit and MaximumBodySize) changed", StringComparison.Ordinal) && l.Contains("Changed: Policies:other: added ('defined').", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(10)), string.Join("\n", gateway.Logs.Lines));

        // Every query parameter makes its own entry now: bust=3 misses once, then hits.
        await GetAllAsync(client, "/page?id=1&bust=3", "/page?id=1&bust=3", "/page?id=1&bust=4");
        Assert.Equal(3, backend.Requests);
    }

    private static async Task GetAllAsync(HttpClient client, params string[] paths)
    {
        foreach (var path in paths)
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    /// <summary>A gateway whose catch-all route to <paramref name="backend"/> has the output-cache policy <paramref name="policy"/>, defined as <paramref name="settings"/>.</summary>
    // Before: passed through without a word (ASP.NET Core's rule), so a route whose cluster has session affinity, which
    // sets its cookie on every new client's response, showed nothing but misses.
    [Theory]
    [InlineData("/set-cookie/session", "session", false)]
    [InlineData("/", "aff", true)]
    public async Task AResponseThatSetsACookie_IsNotStored_AndTheRouteIsNamedOnce(string path, string cookie, bool affinity)
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = "short";
        config["Gateway"] = JsonNode.Parse("""{ "OutputCache": { "Policies": { "short": { "Duration": "00:05:00" } } } }""");
        if (affinity)
        {
            config["ReverseProxy"]!["Clusters"]!["c1"]!["SessionAffinity"] = new JsonObject { ["Enabled"] = true, ["AffinityKeyName"] = "aff" };
        }

        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = gateway.ProxyAddress };
        for (var i = 0; i < 3; i++)
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith(cookie + "=", StringComparison.Ordinal));
        }

        Assert.Equal(3, backend.Requests);
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[OutputCacheSetCookieNotStored]", StringComparison.Ordinal));
        Assert.Contains($"route 'all' sets cookie '{cookie}'", line, StringComparison.Ordinal);
        Assert.Equal(affinity, line.Contains("session-affinity cookie of cluster 'c1'", StringComparison.Ordinal));
    }

    // Before: the second HEAD was served from the first one's entry with Content-Length: 0 (ASP.NET Core's cache stores a
    // HEAD's answer under its own key, with its empty body).
    [Fact]
    public async Task AHead_IsNotServedFromTheCache_ItsContentLengthIsTheBackends()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        for (var i = 0; i < 3; i++)
        {
            using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/bytes/239"));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(239, head.Content.Headers.ContentLength);
        }

        Assert.Equal(3, backend.Requests);
        Assert.Equal(239, (await client.GetByteArrayAsync("/bytes/239")).Length);
        Assert.Equal(239, (await client.GetByteArrayAsync("/bytes/239")).Length);
        Assert.Equal(4, backend.Requests); // the GET is cached as before
    }

    // Before: ASP.NET Core's key folded a path's case, a parameter name's case and the order of a name's values, so
    // /Case.txt's answer was served for /case.txt, and whoever asked first for ?ID=5 (which a backend reading "id"
    // answers as if it were not there) or ?id=2&id=1 filled the entry every ?id=5 or ?id=1&id=2 got.
    [Theory]
    [InlineData("", new[] { "/page?id=5", "/page?ID=5", "/Page?id=5", "/page?id=1&id=2", "/page?id=2&id=1", "/page?x=1&y=2" }, new[] { "/page?id=5", "/page?y=2&x=1" })]
    [InlineData("\"id\"", new[] { "/page?id=5&bust=1", "/page?ID=5", "/page?Id=5", "/page?id=1&id=2", "/page?id=2&id=1", "/page" }, new[] { "/page?id=5&bust=2", "/page?bust=3&id=5", "/page?bust=4" })]
    public async Task AnEntry_IsKeyedOnThePathAndParametersAsSent(string varyByQuery, string[] misses, string[] hits)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", $$"""{ "Duration": "00:05:00", "VaryByQuery": [ {{varyByQuery}} ] }""");
        using var client = gateway.CreateProxyClient();

        foreach (var path in misses.Concat(hits))
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal(misses, backend.RawTargets);
    }

    [Theory]
    [InlineData("", "", null)]
    [InlineData("?", "", null)]
    [InlineData("?id=5", "", "id=5")]
    [InlineData("?b=2&a=1&B=3&a=0", "", "B=3&a=1&a=0&b=2")]
    [InlineData("?flag&q=a%20b", "", "flag&q=a%20b")]
    [InlineData("?ID=5&bust=1&id=6", "id", "ID=5&id=6")]
    [InlineData("?i%64=5&bust=1", "id", "i%64=5")]
    [InlineData("?bust=1", "id", null)]
    public void TheQuerysPartOfTheKey_KeepsNamesCaseAndValuesOrder(string query, string names, string? expected)
    {
        var listed = new Microsoft.Extensions.Primitives.StringValues(names.Split(',', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(expected, YarpGateway.OutputCaching.OutputCacheQueryKey.Of(new QueryString(query), listed));
    }

    // Before: the route's own CORS policy added "Vary: Origin" to each answer to a browser, so none was stored (only those
    // to requests without an allowed Origin were), and the log told the operator to key entries by Origin.
    [Fact]
    public async Task OnARouteWithACorsPolicy_AnswersToBrowsersAreStored_AndEachHitGetsItsOwnOriginsHeaders()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = "short";
        config["ReverseProxy"]!["Routes"]!["all"]!["CorsPolicy"] = "web";
        config["Gateway"] = JsonNode.Parse("""
            { "OutputCache": { "Policies": { "short": { "Duration": "00:05:00" } } },
              "Cors": { "Policies": { "web": { "Origins": [ "https://a.example", "https://b.example" ] } } } }
            """);
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        foreach (var (origin, allowed) in new[] { ("https://a.example", true), ("https://b.example", true), ("https://evil.example", false), ("https://a.example", true) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/page");
            request.Headers.Add("Origin", origin);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(allowed ? origin : null, response.Headers.TryGetValues("Access-Control-Allow-Origin", out var values) ? Assert.Single(values) : null);
        }

        Assert.Equal(1, backend.Requests);
        Assert.DoesNotContain(gateway.Logs.Lines, l => l.Contains("[OutputCacheVaryNotKeyed]", StringComparison.Ordinal));
    }

    // Before: keyed by URL alone, the answer of a route for requests with a header (a canary's) was served to the clients
    // of the route beside it for the same URL, and the other way round.
    [Fact]
    public async Task TwoRoutesThatMatchOneUrl_KeepTheirOwnEntries()
    {
        await using var stable = await TestBackend.StartAsync("stable");
        await using var canary = await TestBackend.StartAsync("canary");
        var config = ProxyConfigJson.Config(
            [("canary", "/{**catch-all}", "canaries"), ("all", "/{**catch-all}", "stables")],
            [("canaries", "RoundRobin", [(canary, null)]), ("stables", "RoundRobin", [(stable, null)])]);
        var routes = config["ReverseProxy"]!["Routes"]!;
        routes["canary"]!["Match"]!["Headers"] = JsonNode.Parse("""[ { "Name": "X-Canary", "Values": [ "1" ] } ]""");
        routes["canary"]!["OutputCachePolicy"] = "short";
        routes["all"]!["OutputCachePolicy"] = "short";
        config["Gateway"] = JsonNode.Parse("""{ "OutputCache": { "Policies": { "short": { "Duration": "00:05:00" } } } }""");
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();

        foreach (var (canaryHeader, expected) in new[] { (true, "canary"), (false, "stable"), (true, "canary"), (false, "stable") })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/page");
            if (canaryHeader)
            {
                request.Headers.Add("X-Canary", "1");
            }

            using var response = await client.SendAsync(request);
            Assert.Equal(expected, await response.Content.ReadAsStringAsync());
        }

        Assert.Equal((1, 1), (canary.Requests, stable.Requests)); // and each route's second request was its own hit
    }

    // Before: once a GET was stored, a request for a range of it (a video player's; Safari plays nothing without 206) got
    // the whole body as a 200 from the cache.
    [Fact]
    public async Task ARequestForARange_IsAnsweredByTheBackend_WithItsPartialContent()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend, "short", """{ "Duration": "00:05:00" }""");
        using var client = gateway.CreateProxyClient();

        Assert.Equal(100, (await client.GetByteArrayAsync("/bytes/100")).Length);
        Assert.Equal(100, (await client.GetByteArrayAsync("/bytes/100")).Length); // stored
        for (var i = 0; i < 2; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/bytes/100");
            request.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(10, 19);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal("klmnopqrst", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(3, backend.Requests);
    }

    private static Task<GatewayUnderTest> StartAsync(TestBackend backend, string policy, string settings)
    {
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        config["ReverseProxy"]!["Routes"]!["all"]!["OutputCachePolicy"] = policy;
        config["Gateway"] = JsonNode.Parse($$"""{ "OutputCache": { "Policies": { "{{policy}}": {{settings}} } } }""");
        return GatewayUnderTest.StartAsync(config);
    }
}
