using Microsoft.Extensions.DependencyInjection;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

public class GatewayConfigValidatorTests
{
    /// <summary>Reads and validates <paramref name="json"/> as the gateway does: the validator comes from the gateway's own composition (AddGateway).</summary>
    internal static async Task<IReadOnlyList<ConfigError>> ValidateAsync(string json)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Testing" });
        builder.AddGateway();
        await using var app = builder.Build();
        var validator = app.Services.GetRequiredService<GatewayConfigValidator>();
        return await validator.ValidateAsync(ProxyConfigReader.Read(ProxyConfigReaderTests.Json(json)), CancellationToken.None);
    }

    [Fact]
    public async Task Valid_WeightedPolicies_NoErrors()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "a", "Match": { "Path": "/{**x}" } } },
          "Clusters": { "a": { "LoadBalancingPolicy": "WeightedLeastRequests", "Destinations": { "d": { "Address": "http://127.0.0.1:1", "Metadata": { "Weight": "0" } } } },
                        "b": { "LoadBalancingPolicy": "WeightedRoundRobin", "SessionAffinity": { "Enabled": true, "Policy": "Cookie", "AffinityKeyName": "aff" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task AResponseHeaderEncodingOtherThanLatin1_IsAnError_TheRequestEncodingIsTheClusters()
    {
        // Response header bytes go to clients as they came (Latin-1 on both sides, one encoding for every cluster),
        // so a cluster cannot decode them otherwise; its request encoding is its own (YARP's setting).
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "a", "Match": { "Path": "/{**x}" } } },
          "Clusters": { "a": { "HttpClient": { "ResponseHeaderEncoding": "utf-8", "RequestHeaderEncoding": "iso-8859-1" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } },
                        "b": { "HttpClient": { "ResponseHeaderEncoding": "latin1" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Clusters:a:HttpClient:ResponseHeaderEncoding", error.Key);
        Assert.Contains("'utf-8' cannot be used", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RoutesWithTheSameMatchAndOrder_AreAnError_ADifferentOrderOrMethodIsNot()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Routes": {
            "a": { "ClusterId": "c", "Match": { "Path": "/api/{**x}", "Methods": [ "GET", "POST" ] } },
            "b": { "ClusterId": "c", "Match": { "Path": "/API/{**x}", "Methods": [ "post", "get" ] } },
            "c": { "ClusterId": "c", "Order": 1, "Match": { "Path": "/api/{**x}", "Methods": [ "GET", "POST" ] } },
            "d": { "ClusterId": "c", "Match": { "Path": "/api/{**x}", "Methods": [ "PUT" ] } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:b:Match", error.Key);
        Assert.Contains("same Match and Order as route 'a'", error.Message, StringComparison.Ordinal);
    }

    // Before: only a Match written the same way was caught; these loaded, and every request they both matched got
    // a 500 (AmbiguousMatchException) with a stack trace in the log (tried on the Release build).
    [Theory]
    [InlineData("""{ "Path": "/x/{id}" }""", """{ "Path": "/X/{name}" }""", "paths '/x/{id}' and '/X/{name}' match the same requests")]
    [InlineData("""{ "Path": "/api/{**rest}" }""", """{ "Path": "/api/{*catchall}" }""", "paths")]
    [InlineData("""{ "Hosts": [ "a.com" ] }""", """{ "Path": "/{**all}", "Hosts": [ "A.com" ] }""", "paths")]
    [InlineData("""{ "Path": "/h", "Hosts": [ "a.com", "b.com" ] }""", """{ "Path": "/h", "Hosts": [ "B.COM" ] }""", "both match host b.com")]
    [InlineData("""{ "Path": "/m", "Methods": [ "GET" ] }""", """{ "Path": "/m", "Methods": [ "get", "PUT" ] }""", "both match method GET")]
    public async Task RoutesThatRoutingFindsAmbiguous_AreAnError_HoweverTheyAreWritten(string first, string second, string how)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "a": { "ClusterId": "c", "Match": {{first}} }, "b": { "ClusterId": "c", "Match": {{second}} } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:b:Match", error.Key);
        Assert.Contains("same Match and Order as route 'a' as routing compares them (", error.Message, StringComparison.Ordinal);
        Assert.Contains(how, error.Message, StringComparison.Ordinal);
    }

    // Routing prefers the route that says more: these serve (each tried on the Release build).
    [Theory]
    [InlineData("""{ "Path": "/x/{id:int}" }""", """{ "Path": "/x/{name}" }""")]
    [InlineData("""{ "Path": "/h" }""", """{ "Path": "/h", "Hosts": [ "b.com" ] }""")]
    [InlineData("""{ "Path": "/w", "Hosts": [ "*.a.com" ] }""", """{ "Path": "/w", "Hosts": [ "x.a.com" ] }""")]
    [InlineData("""{ "Path": "/p", "Hosts": [ "b.com:8080" ] }""", """{ "Path": "/p", "Hosts": [ "b.com" ] }""")]
    [InlineData("""{ "Path": "/m" }""", """{ "Path": "/m", "Methods": [ "GET" ] }""")]
    [InlineData("""{ "Path": "/r/{id}", "Headers": [ { "Name": "x-a", "Values": [ "1" ] } ] }""", """{ "Path": "/r/{id}" }""")]
    [InlineData("""{ "Path": "/x/{id}" }""", """{ "Path": "/x/{id}/y" }""")]
    public async Task RoutesWhereRoutingPrefersOne_AreNotAnError(string first, string second)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "a": { "ClusterId": "c", "Match": {{first}} }, "b": { "ClusterId": "c", "Match": {{second}} } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("/x/{id}", "/x/{}")]
    [InlineData("/API/{**rest}", "/api/{**}")]
    [InlineData("/a/{id:int:min(1)}/{x?}", "/a/{:int:min(1)}/{?}")]
    [InlineData("/f/{name}.{ext=txt}", "/f/{}.{=}")]
    [InlineData(null, "/{**}")]
    public void PathShape_IsWhatRoutingMatches_WithoutParameterNamesOrCase(string? path, string shape)
        => Assert.Equal(shape, GatewayConfigValidator.PathShape(path));

    [Theory]
    [InlineData("http://127.0.0.1:1/base/?x=1", "query or fragment")]
    [InlineData("http://127.0.0.1:1/#top", "query or fragment")]
    [InlineData("ftp://127.0.0.1:1/", "scheme 'ftp'")]
    [InlineData("ws://127.0.0.1:1/", "scheme 'ws'")]
    // No scheme: YARP took these, and every request to the destination got 502 (an invalid URI), with readiness healthy.
    [InlineData("127.0.0.1:9501", "'127.0.0.1:9501' is not an absolute http:// or https:// address; did you mean 'http://127.0.0.1:9501'?")]
    [InlineData("localhost:5000", "did you mean 'http://localhost:5000'?")]
    [InlineData("backend", "did you mean 'http://backend'?")]
    [InlineData("/var/run/app.sock", "'/var/run/app.sock' is not an absolute http:// or https:// address")]
    [InlineData("http//10.0.0.5/", "'http//10.0.0.5/' is not an absolute http:// or https:// address")]
    [InlineData("http://[::1", "is not an absolute http:// or https:// address")]
    public async Task DestinationWithAQueryOrAnotherSchemeOrNone_IsAnError(string address, string expected)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "Destinations": { "d": { "Address": "{{address}}" } } } } } }
        """);
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Clusters:c:Destinations:d:Address" && e.Message.Contains(expected, StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Message.Contains("did you mean 'http://http", StringComparison.Ordinal) || e.Message.Contains("did you mean 'http:///", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("00:00:00", true)]
    [InlineData("-00:00:01", true)]
    [InlineData("00:00:00.001", false)]
    [InlineData("00:05:00", false)]
    public async Task AClustersActivityTimeoutOfZeroOrLess_IsAnError(string timeout, bool refused)
    {
        // YARP took 00:00:00, and every request to the cluster got 504 at once (tried by hand, on a reload).
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "HttpRequest": { "ActivityTimeout": "{{timeout}}" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, refused, "ReverseProxy:Clusters:c:HttpRequest:ActivityTimeout", "not a time greater than zero");
    }

    [Theory]
    [InlineData("3", "RequestVersionExact", "http", true)]
    [InlineData("3", "RequestVersionOrHigher", "http", true)]
    [InlineData("3", "RequestVersionOrLower", "http", false)] // falls back to HTTP/1.1 (tried: 200)
    [InlineData("3", null, "http", false)] // YARP's default policy: RequestVersionOrLower
    [InlineData("2", "RequestVersionExact", "http", false)] // h2c with prior knowledge: a backend may speak it
    public async Task Http3WithoutFallback_ToAnHttpDestination_IsAnError(string version, string? policy, string scheme, bool refused)
    {
        // YARP took it, and every request to the cluster got 502: "unable to establish HTTP/3 connection" (tried).
        var policyJson = policy is null ? "" : $$""", "VersionPolicy": "{{policy}}" """;
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "HttpRequest": { "Version": "{{version}}"{{policyJson}} }, "Destinations": { "d": { "Address": "{{scheme}}://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, refused, "ReverseProxy:Clusters:c:HttpRequest:VersionPolicy", "to the http:// destination(s) 'd' every request would fail (502)");
    }

    [Fact]
    public async Task Http3WithoutFallback_ToHttpsDestinations_IsAnError_OnlyWhereTheMachineHasNoQuic()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Clusters": { "c": { "HttpRequest": { "Version": "3", "VersionPolicy": "RequestVersionExact" }, "Destinations": { "d": { "Address": "https://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, !YarpGateway.Endpoints.QuicSupport.IsAvailable, "ReverseProxy:Clusters:c:HttpRequest:VersionPolicy", "this machine has no QUIC");
    }

    [Theory]
    [InlineData("\"Tls11\"", "https", "['Tls11'] offers no TLS 1.2 or 1.3")]
    [InlineData("\"Tls\", \"Tls12\", \"Tls13\"", "https", "['Tls', 'Tls12', 'Tls13'] misses Tls11")]
    [InlineData("\"Tls11\", \"Tls12\"", "https", null)] // TLS 1.2 is served (tried: 200)
    [InlineData("\"Tls12\"", "https", null)]
    [InlineData("\"Tls11\"", "http", null)] // no TLS to the destination: the setting does nothing
    public async Task AClustersTlsVersionsNoDestinationCouldUse_AreAnError(string list, string scheme, string? expected)
    {
        // YARP took them, and every request to an https:// destination got 502 ("SSL Handshake failed"; tried).
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "HttpClient": { "SslProtocols": [ {{list}} ] }, "Destinations": { "d": { "Address": "{{scheme}}://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, expected is not null, "ReverseProxy:Clusters:c:HttpClient:SslProtocols", expected ?? "-");
        if (expected is not null)
        {
            Assert.EndsWith("every request to its https:// destinations would fail (502); " + (expected.Contains("misses", StringComparison.Ordinal) ? "list them without a gap, e.g. [\"Tls12\", \"Tls13\"]." : "use Tls12 or Tls13."), errors[0].Message, StringComparison.Ordinal);
        }
    }

    /// <summary>Hosts routing reads that match no request (tried: 404 for every Host, and nothing logged).</summary>
    [Theory]
    [InlineData("a.com.", "the gateway reads a trailing dot away from a request's Host before routing, so write 'a.com'")]
    [InlineData("a.com.:8443", "the gateway reads a trailing dot away from a request's Host before routing, so write 'a.com:8443'")]
    [InlineData("*.", "a '*' is the whole name (*) or its first label (*.example.com)")]
    [InlineData("*.a.*", "a '*' is the whole name")]
    [InlineData("a*b.com", "a '*' is the whole name")]
    [InlineData("**", "a '*' is the whole name")]
    public async Task ARouteHostThatNoRequestCanMatch_IsAnError(string host, string why)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/{**all}", "Hosts": [ "{{host}}" ] } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);

        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:r:Match:Hosts", error.Key);
        Assert.Contains($"'{host}' never matches a request: {why}", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://a.com", true)] // routing threw building its table: every request to every route got 500
    [InlineData("[::1]:8080", true)]
    [InlineData("a.com:port", true)]
    [InlineData(":8080", true)]
    [InlineData("a.com/api", false)] // never matched
    [InlineData("a.com", null)]
    [InlineData("a.com:8443", null)]
    [InlineData("*.a.com", null)]
    [InlineData("a.com:*", null)]
    [InlineData("localhost", null)]
    [InlineData("*", null)]
    public async Task ARouteHostRoutingCannotRead_OrThatCanNeverMatch_IsAnError(string host, bool? unreadable)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/{**all}", "Hosts": [ "{{host}}" ] } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        if (unreadable is null)
        {
            Assert.Empty(errors);
            return;
        }

        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:r:Match:Hosts", error.Key);
        Assert.Contains($"'{host}' is not a host a request can match", error.Message, StringComparison.Ordinal);
        Assert.Equal(unreadable.Value, error.Message.Contains("every request to every route would fail with 500", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("/api/*", "the segment '*'", "write '/api/{**rest}'")]
    [InlineData("/img/**", "the segment '**'", "write '/img/{**rest}'")]
    [InlineData("/web/.*", "the segment '.*'", "write '/web/{**rest}'")]
    [InlineData("/*", "the segment '*'", "write '/{**rest}'")]
    [InlineData("/a/{id}/*.json", "the segment '*.json'", "write '/a/{id}/{**rest}'")]
    [InlineData("/api/{**rest}", null, null)]
    [InlineData("/api/{*rest}", null, null)]
    [InlineData("/x/{id:regex(^a*$)}", null, null)] // a * in a constraint is the regex's
    [InlineData("/files/{name}.{ext?}", null, null)] // a separator part: read, not cast
    [InlineData("/files/{name}.{ext?}/*", "the segment '*'", "write '/files/{name}.{ext?}/{**rest}'")]
    public async Task APathWithAGlobWildcard_IsAnError_NamingTheCatchAllToWrite(string path, string? segment, string? write)
    {
        // nginx's, Envoy's and Traefik's habits: routing reads the * as itself, so the route took only that literal path,
        // and --check passed it.
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{{path}}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        if (segment is null)
        {
            Assert.Empty(errors);
            return;
        }

        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:r:Match:Path", error.Key);
        Assert.Contains(segment, error.Message, StringComparison.Ordinal);
        Assert.Contains(write!, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/x/{id:nosuchconstraint}", "could not be resolved")]
    [InlineData("/x/{id:min(abc)}", null)]
    [InlineData("/x/{id:regex([)}", null)] // routing compiles it at the first request
    [InlineData("/x/{id:length(1,x)}", null)]
    [InlineData("/x/{id:int}", "")]
    [InlineData("/x/{id:regex(^\\\\d{{3}}$)}", "")]
    [InlineData("/x/{id:min(1):max(9)}/{name:alpha:minlength(2)}", "")]
    public async Task ARouteConstraintRoutingCannotCreate_IsAnError(string path, string? expected)
    {
        // YARP's validation passed these; YARP's apply then failed, and the route table took no later reload until a restart.
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "{{path}}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        if (expected == "")
        {
            Assert.Empty(errors);
            return;
        }

        var error = Assert.Single(errors);
        Assert.Equal("ReverseProxy:Routes:r:Match:Path", error.Key);
        Assert.Contains("cannot be used", error.Message, StringComparison.Ordinal);
        Assert.Contains("Constraints routing knows: alpha, bool,", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected ?? string.Empty, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-2", true)] // YARP took it: every request to the route got 500 (Kestrel refuses the value)
    [InlineData("-1", false)]
    [InlineData("0", false)]
    [InlineData("1048576", false)]
    public async Task ARoutesMaxRequestBodySizeBelowMinusOne_IsAnError(string size, bool refused)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "MaxRequestBodySize": {{size}}, "Match": { "Path": "/{**all}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, refused, "ReverseProxy:Routes:r:MaxRequestBodySize", "is not a size in bytes");
    }

    [Theory]
    [InlineData("bad host", true)]
    [InlineData("a.example\r\nX-Injected: 1", true)] // YARP took it: every request to the destination got 502
    [InlineData("a.example/path", true)]
    [InlineData("a.example", false)]
    [InlineData("a.example:8443", false)]
    [InlineData("10.0.0.5", false)]
    [InlineData("[::1]:8080", false)]
    public async Task ADestinationHostThatCannotBeAHostHeader_IsAnError(string host, bool refused)
    {
        var destination = new System.Text.Json.Nodes.JsonObject { ["Address"] = "http://127.0.0.1:1", ["Host"] = host };
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "Destinations": { "d": {{destination.ToJsonString()}} } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, refused, "ReverseProxy:Clusters:c:Destinations:d:Host", "is not a host name or address");
    }

    [Theory]
    // Each refused one was taken by YARP's validation and then tried on a reload: every request 502, the header or route
    // value left out of every request without a word, a response header sent as '?', or the apply failed and froze routing.
    [InlineData("""{ "RequestHeader": "X A", "Set": "a" }""", "Transforms:0:RequestHeader", "is not a header name")]
    [InlineData("""{ "RequestHeader": "X-A", "Set": "a\r\nX-Injected: 1" }""", "Transforms:0:Set", "U+000D")]
    [InlineData("""{ "RequestHeader": "X-A", "Append": "a\u0001b" }""", "Transforms:0:Append", "U+0001")]
    [InlineData("""{ "RequestHeader": "X-A", "Set": "caf\u00e9 \u20ac\ta" }""", null, null)] // request headers go out as UTF-8
    [InlineData("""{ "ResponseHeader": "X-A", "Set": "a\nb" }""", "Transforms:0:Set", "U+000A")]
    [InlineData("""{ "ResponseHeader": "X-A", "Set": "\u20ac" }""", "Transforms:0:Set", "which Latin-1 has not")]
    [InlineData("""{ "ResponseHeader": "X-A", "Set": "caf\u00e9", "When": "Always" }""", null, null)]
    [InlineData("""{ "ResponseTrailer": "X T", "Set": "a" }""", "Transforms:0:ResponseTrailer", "is not a header name")]
    [InlineData("""{ "RequestHeaderRemove": "X Secret" }""", "Transforms:0:RequestHeaderRemove", "nothing would be removed")]
    [InlineData("""{ "ClientCert": "X C" }""", "Transforms:0:ClientCert", "is not a header name")]
    [InlineData("""{ "X-Forwarded": "Set", "HeaderPrefix": "X A" }""", "Transforms:0:HeaderPrefix", "cannot start a header name")]
    [InlineData("""{ "X-Forwarded": "Set", "HeaderPrefix": "My-" }""", null, null)]
    [InlineData("""{ "PathPattern": "/api/{name}" }""", "Transforms:0:PathPattern", "the route value 'name' is not captured by the route's Match.Path '/x/{id}' (it captures 'id')")]
    [InlineData("""{ "PathPattern": "/api/{ID}/items" }""", null, null)]
    [InlineData("""{ "PathRemovePrefix": "/x/" }""", "Transforms:0:PathRemovePrefix", "'/x/' ends with '/', so it is removed from no path under it")]
    [InlineData("""{ "PathRemovePrefix": "/x" }""", null, null)]
    [InlineData("""{ "PathRemovePrefix": "/" }""", null, null)]
    [InlineData("""{ "PathPrefix": "/v1/" }""", "Transforms:0:PathPrefix", "'/x' would reach the backend as '/v1//x'. Write '/v1'")]
    [InlineData("""{ "PathPrefix": "/" }""", "Transforms:0:PathPrefix", "Write 'nothing (no PathPrefix)'")]
    [InlineData("""{ "PathPrefix": "/v1" }""", null, null)]
    [InlineData("""{ "QueryRouteParameter": "q", "Append": "name" }""", "Transforms:0:Append", "the route value 'name' is not captured")]
    [InlineData("""{ "RequestHeaderRouteValue": "X-Id", "Set": "name" }""", "Transforms:0:Set", "the route value 'name' is not captured")]
    [InlineData("""{ "RequestHeaderRouteValue": "X-Id", "Set": "id" }""", null, null)]
    [InlineData("""{ "HttpMethodChange": "GET", "Set": "G T" }""", "Transforms:0", "YARP cannot build this transform")]
    [InlineData("""{ "PathPattern": "/api/{id" }""", "Transforms:0", "YARP cannot build this transform")]
    [InlineData("""{ "QueryRemoveParameter": "" }""", "Transforms:0", "YARP cannot build this transform")]
    [InlineData("""{ "HttpMethodChange": "GET", "Set": "POST", "Extra": "1" }""", "", "more parameters than expected")]
    public async Task ATransformRequestsWouldGetWrong_IsAnError(string transform, string? key, string? text)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/x/{id}" }, "Transforms": [ {{transform}} ] } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, key is not null, "ReverseProxy:Routes:r" + (key is { Length: > 0 } ? ":" + key : string.Empty), text ?? string.Empty);
    }

    [Theory]
    // Each refused one was taken by YARP and then tried on a reload: every request to the cluster 502 (a name that is not
    // a token, a path with a line break), or a Set-Cookie a browser reads otherwise or drops.
    [InlineData("""{ "Policy": "Cookie", "AffinityKeyName": "a b;c" }""", "AffinityKeyName", "is not a cookie name")]
    [InlineData("""{ "AffinityKeyName": "a=b" }""", "AffinityKeyName", "is not a cookie name")] // HashCookie, YARP's default
    [InlineData("""{ "Policy": "CustomHeader", "AffinityKeyName": "X A" }""", "AffinityKeyName", "is not a header name")]
    [InlineData("""{ "Policy": "CustomHeader", "AffinityKeyName": "X-Affinity" }""", null, null)]
    [InlineData("""{ "Policy": "Cookie", "AffinityKeyName": "aff", "Cookie": { "Path": "/a;b" } }""", "Cookie:Path", "browsers would read the cookie otherwise")]
    [InlineData("""{ "Policy": "Cookie", "AffinityKeyName": "aff", "Cookie": { "Path": "/a\r\nb" } }""", "Cookie:Path", "every request to the cluster would fail with 502")]
    [InlineData("""{ "Policy": "Cookie", "AffinityKeyName": "aff", "Cookie": { "Path": "shop" } }""", "Cookie:Path", "write it from the root ('/shop'")]
    [InlineData("""{ "Policy": "ArrCookie", "AffinityKeyName": "aff", "Cookie": { "Domain": "x y" } }""", "Cookie:Domain", "is not a domain")]
    [InlineData("""{ "Policy": "Cookie", "AffinityKeyName": "aff", "Cookie": { "Path": "/shop", "Domain": ".example.com" } }""", null, null)]
    public async Task AnAffinityCookieOrHeaderResponsesCannotCarry_IsAnError(string affinity, string? key, string? text)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "SessionAffinity": { "Enabled": true, {{affinity.Trim()[1..^1]}} }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, key is not null, "ReverseProxy:Clusters:c:SessionAffinity:" + key, text ?? string.Empty);
    }

    [Theory]
    // Tried on a reload: every request to the cluster 502 for the first two; the health ones failed every probe with an
    // error and its stack in the log (each destination, each interval), or probed a path the backend has not (/h%3Fx=1).
    [InlineData("""{ "HttpClient": { "WebProxy": { "Address": "nonsense" } } }""", "HttpClient:WebProxy:Address", "is not a proxy's address")]
    [InlineData("""{ "HttpClient": { "WebProxy": { "Address": "ftp://127.0.0.1:21" } } }""", "HttpClient:WebProxy:Address", "is not a proxy's address")]
    [InlineData("""{ "HttpClient": { "WebProxy": { "Address": "http://127.0.0.1:3128" } } }""", null, null)]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Path": "health" } } }""", "HealthCheck:Active:Path", "is not a probe path")]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Path": "/h?ready=1" } } }""", "HealthCheck:Active:Path", "a query goes in Query")]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Query": "ready=1" } } }""", "HealthCheck:Active:Query", "is not a probe query")]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Path": "/health", "Query": "?ready=1" } } }""", null, null)]
    [InlineData("""{ "Destinations": { "d": { "Address": "http://127.0.0.1:1", "Health": "nonsense" } } }""", "Destinations:d:Health", "is not an absolute http:// or https:// address")]
    [InlineData("""{ "Destinations": { "d": { "Address": "http://127.0.0.1:1", "Health": "http://127.0.0.1:2/" } } }""", null, null)]
    public async Task AProxyOrProbeAddressRequestsCannotUse_IsAnError(string settings, string? key, string? text)
    {
        var body = settings.Trim()[1..^1];
        var destinations = body.Contains("\"Destinations\"", StringComparison.Ordinal) ? string.Empty : """, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } }""";
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { {{body}}{{destinations}} } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, key is not null, "ReverseProxy:Clusters:c:" + key, text ?? string.Empty);
    }

    [Theory]
    // 60 days, tried on a reload: a route's TryTimeout made every request 500; a cluster's ConnectTimeout or a probe
    // Interval failed YARP's apply, which froze routing until a restart. The longest a timer takes is accepted.
    [InlineData("""{ "Metadata": { "TryTimeout": "60.00:00:00" } }""", "Routes:r:Metadata:TryTimeout", "at most 24.20:31:23")]
    [InlineData("""{ "Metadata": { "MaxConcurrency": "5", "QueueTimeout": "60.00:00:00" } }""", "Routes:r:Metadata:QueueTimeout", "at most 24.20:31:23")]
    [InlineData("""{ "Metadata": { "WebSocketWriteTimeout": "60.00:00:00" } }""", "Routes:r:Metadata:WebSocketWriteTimeout", "at most 24.20:31:23")]
    [InlineData("""{ "Metadata": { "TryTimeout": "24.20:31:23" } }""", null, null)]
    public async Task ARouteTimeLongerThanATimerTakes_IsAnError(string settings, string? key, string? text)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/{**all}" }, {{settings.Trim()[1..^1]}} } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, key is not null, "ReverseProxy:" + key, text ?? string.Empty);
    }

    [Theory]
    [InlineData("""{ "Metadata": { "ConnectTimeout": "60.00:00:00" } }""", "Metadata:ConnectTimeout", "at most 24.20:31:23")]
    [InlineData("""{ "Metadata": { "OutlierEjection.Window": "60.00:00:00" } }""", "Metadata:OutlierEjection.Window", "to 24.20:31:23")]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Interval": "60.00:00:00" } } }""", "HealthCheck:Active:Interval", "at most 24.20:31:23")]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Timeout": "60.00:00:00" } } }""", "HealthCheck:Active:Timeout", "at most 24.20:31:23")]
    [InlineData("""{ "HealthCheck": { "Passive": { "Enabled": true, "ReactivationPeriod": "60.00:00:00" } } }""", "HealthCheck:Passive:ReactivationPeriod", "at most 24.20:31:23")]
    [InlineData("""{ "HealthCheck": { "Active": { "Enabled": true, "Interval": "24.20:31:23" } }, "Metadata": { "ConnectTimeout": "24.00:00:00" } }""", null, null)]
    public async Task AClusterTimeLongerThanATimerTakes_IsAnError(string settings, string? key, string? text)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { {{settings.Trim()[1..^1]}}, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, key is not null, "ReverseProxy:Clusters:c:" + key, text ?? string.Empty);
    }

    [Theory]
    [InlineData("-00:00:05")]
    [InlineData("00:00:00")]
    public async Task APassiveReactivationPeriodNotAboveZero_IsOneError_NotYarpsToo(string period)
    {
        // With passive checks on, YARP's validator said it again without the key ("Unhealthy destination reactivation
        // period set on the cluster 'c' must be positive").
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "HealthCheck": { "Passive": { "Enabled": true, "ReactivationPeriod": "{{period}}" } }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, true, "ReverseProxy:Clusters:c:HealthCheck:Passive:ReactivationPeriod", "must be positive");
    }

    [Theory]
    [InlineData("utf-16", true)] // tried: the backend got "c\0u\0r\0l\0", a NUL after every character of every header
    [InlineData("utf-32", true)]
    [InlineData("utf-16BE", true)]
    [InlineData("utf-8", false)]
    [InlineData("iso-8859-1", false)]
    [InlineData("us-ascii", false)]
    public async Task ARequestHeaderEncodingThatDoesNotWriteAsciiAsAscii_IsAnError(string encoding, bool refused)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "HttpClient": { "RequestHeaderEncoding": "{{encoding}}" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, refused, "ReverseProxy:Clusters:c:HttpClient:RequestHeaderEncoding", "does not write ASCII as ASCII");
    }

    [Theory]
    // Tried on a reload: a route matching the header "X A" never matched anything, without a word; YARP's own error for a
    // path that is not a pattern said only "Invalid path".
    [InlineData("""{ "Path": "/x", "Headers": [ { "Name": "X A", "Values": [ "1" ] } ] }""", "Match:Headers:0:Name", "the route would never match")]
    [InlineData("""{ "Path": "/x", "Headers": [ { "Name": "X-Tenant", "Values": [ "a" ] } ] }""", null, null)]
    [InlineData("""{ "Path": "/x/{id}/{id}" }""", "Match:Path", "'id' appears more than one time")]
    [InlineData("""{ "Path": "/x/{*rest}/y" }""", "Match:Path", "catch-all")]
    // A list item with a value that does not convert was dropped by the binder without a word: the header or query
    // condition was gone, and the route matched every request to its path whatever its headers.
    [InlineData("""{ "Path": "/x", "Headers": [ { "Name": "X-Tenant", "Values": [ "a" ], "Mode": "Exactly" } ] }""", "Match:Headers:0:Mode", "'Exactly' is not one of ExactHeader, HeaderPrefix")]
    [InlineData("""{ "Path": "/x", "QueryParameters": [ { "Name": "q", "Values": [ "a" ], "IsCaseSensitive": "yes" } ] }""", "Match:QueryParameters:0:IsCaseSensitive", "'yes' is not true or false")]
    public async Task AMatchNoRequestCanMeet_IsAnError_WithItsReason(string match, string? key, string? text)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": {{match}} } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, key is not null, "ReverseProxy:Routes:r:" + key, text ?? string.Empty);
    }

    /// <summary>
    /// A section with a value that does not convert is still read from the rest, so that what else is wrong in it is listed
    /// in the same run: until 2026-12-07 the section was dropped whole, and each further error came out only once the one
    /// before it was fixed (tried with <c>--check</c>: one error of five).
    /// </summary>
    [Fact]
    public async Task ASectionWithAValueThatDoesNotConvert_StillHasItsOtherErrorsListed()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": {
            "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/x", "Headers": [ { "Name": "X A", "Values": [ "1" ], "Mode": "Exactly" } ] } } },
            "Clusters": { "c": {
              "SessionAffinity": { "Enabled": true, "Policy": "Nope", "AffinityKeyName": "a b;c", "Cookie": { "MaxAge": "x", "Expiration": "-00:00:01" } },
              "HealthCheck": { "Active": { "Enabled": true, "Interval": "soon", "Timeout": "00:00:00" } },
              "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        string[] expected =
        [
            "ReverseProxy:Routes:r:Match:Headers:0:Mode: 'Exactly' is not one of",
            "ReverseProxy:Routes:r:Match:Headers:0:Name",
            "ReverseProxy:Clusters:c:SessionAffinity:Cookie:MaxAge: 'x' is not a time span",
            "ReverseProxy:Clusters:c:SessionAffinity:AffinityKeyName: 'a b;c' is not a cookie name",
            "No matching ISessionAffinityPolicy found for the session affinity policy 'Nope'",
            "Session affinity cookie expiration must be positive",
            "ReverseProxy:Clusters:c:HealthCheck:Active:Interval: 'soon' is not a time span",
            "Destination probing timeout set on the cluster 'c' must be positive",
        ];
        var listed = errors.Select(e => $"{e.Key}: {e.Message}").ToList();
        Assert.All(expected, text => Assert.Contains(listed, line => line.Contains(text, StringComparison.Ordinal)));
        Assert.Equal(expected.Length, listed.Count);
    }

    [Theory]
    // The binder takes any number for an enum: -1 and 7 passed, and every request to the cluster got 502 (tried).
    [InlineData("-1", true)]
    [InlineData("7", true)]
    [InlineData("2", false)]
    [InlineData("RequestVersionOrLower", false)]
    public async Task AVersionPolicyThatIsNoneOfItsValues_IsAnError(string policy, bool refused)
    {
        var errors = await ValidateAsync($$"""
        { "ReverseProxy": { "Clusters": { "c": { "HttpRequest": { "VersionPolicy": "{{policy}}" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        AssertTheOnlyErrorOrNone(errors, refused, "ReverseProxy:Clusters:c:HttpRequest:VersionPolicy", $"'{policy}' is not one of RequestVersionOrLower, RequestVersionOrHigher, RequestVersionExact.");
    }

    [Fact]
    public async Task AHeaderOrQueryMatchWithoutAName_IsListedAsYarpSaysIt_NotAnUnhandledException()
    {
        // The check for routes that routing would find ambiguous read each match's name: a header match given only a Mode
        // ended --check and the start with a NullReferenceException (exit 134).
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/x", "Headers": [ { "Mode": "ExactHeader" } ], "QueryParameters": [ { "Mode": "Exact" } ] } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);

        Assert.Contains(errors, e => e.Key == "ReverseProxy:Routes:r" && e.Message.Contains("null or empty route header name", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Routes:r" && e.Message.Contains("null or empty route query parameter name", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HashCookieAffinity_AndAffinityWithoutAPolicy_AreValid()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Clusters": {
            "shop": { "SessionAffinity": { "Enabled": true, "Policy": "HashCookie", "AffinityKeyName": "aff" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } },
            "cart": { "SessionAffinity": { "Enabled": true, "AffinityKeyName": "aff" }, "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task EveryErrorIsListed_NotJustTheFirst()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": {
          "Routes": { "r1": { "ClusterId": "missing", "Match": { "Path": "/a" } },
                      "r2": { "ClusterId": "c1" } },
          "Clusters": { "c1": { "LoadBalancingPolicy": "Fastest", "Destinations": { "d1": { "Address": "http://127.0.0.1:1", "Metadata": { "Weight": "-2" } },
                                                                                    "d2": { "Address": "http://127.0.0.1:2", "Metadata": { "Weight": "abc" } } } } } } }
        """);

        Assert.Contains(errors, e => e.Key == "ReverseProxy:Routes:r1:ClusterId" && e.Message.Contains("'missing'", StringComparison.Ordinal) && e.Message.Contains("c1", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Routes:r2");
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Clusters:c1" && e.Message.Contains("Fastest", StringComparison.Ordinal) && e.Message.Contains("WeightedRoundRobin", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Clusters:c1:Destinations:d1:Metadata:Weight");
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Clusters:c1:Destinations:d2:Metadata:Weight");
        Assert.Equal(5, errors.Count);
    }

    [Fact]
    public async Task AnUnknownOutputCachePolicy_IsAConfigError()
    {
        var errors = await ValidateAsync("""
        { "ReverseProxy": { "Routes": { "r": { "ClusterId": "c", "OutputCachePolicy": "nope", "Match": { "Path": "/{**x}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """);
        Assert.Contains(errors, e => e.Key == "ReverseProxy:Routes:r:OutputCachePolicy" && e.Message.Contains("nope", StringComparison.Ordinal));
    }

    /// <summary>With <paramref name="refused"/>, exactly one error, at <paramref name="key"/> and saying <paramref name="text"/>; otherwise none.</summary>
    private static void AssertTheOnlyErrorOrNone(IReadOnlyList<ConfigError> errors, bool refused, string key, string text)
    {
        Assert.Equal(refused, errors.Any(e => e.Key == key && e.Message.Contains(text, StringComparison.Ordinal)));
        Assert.Equal(refused ? 1 : 0, errors.Count);
    }
}
