using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Endpoints;

/// <summary>What <see cref="GatewayKestrelSetup.Validate"/> says of the protocols each endpoint would serve.</summary>
public class EndpointProtocolsTests
{
    private static List<string> Errors(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new("Kestrel:Endpoints:Proxy:Url", "http://*:8080"), new("Kestrel:Endpoints:Management:Url", "http://*:8081")])
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();
        return GatewayKestrelSetup.Validate(configuration).Select(e => e.ToString()).ToList();
    }

    [Fact]
    public void TheDefaults_AndEachEndpointServingHttp11_AreValid()
    {
        Assert.Empty(Errors());
        Assert.Empty(Errors(("Kestrel:Endpoints:Proxy:Protocols", "Http2"), ("Kestrel:Endpoints:Management:Protocols", "Http1")));
        Assert.Empty(Errors(("Kestrel:EndpointDefaults:Protocols", "Http2"), ("Kestrel:Endpoints:Management:Protocols", "Http1AndHttp2")));
    }

    [Fact]
    public void Http3FromEndpointDefaults_OnHttpUrls_NamesTheDefaultsAndEachEndpoint()
    {
        // Before: --check said valid, and the start ended with "HTTP/3 requires HTTPS." and exit 134.
        var errors = Errors(("Kestrel:EndpointDefaults:Protocols", "Http3"));

        Assert.Equal(2, errors.Count);
        Assert.All(errors, e => Assert.StartsWith("Kestrel:EndpointDefaults:Protocols: 'Http3' needs an https:// Url", e, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("applies to the Proxy endpoint", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("applies to the Management endpoint", StringComparison.Ordinal));
    }

    [Fact]
    public void AnEndpointsOwnProtocols_OverrideTheDefaults()
    {
        var errors = Errors(("Kestrel:EndpointDefaults:Protocols", "Http3"), ("Kestrel:Endpoints:Proxy:Protocols", "Http1AndHttp2"), ("Kestrel:Endpoints:Management:Protocols", "Http1"));

        Assert.Empty(errors);
    }

    [Theory]
    [InlineData("Kestrel:Endpoints:Management:Protocols", "Http2", "Kestrel:Endpoints:Management:Protocols: 'Http2' leaves the Management endpoint without HTTP/1.1, which Kubernetes' probes")]
    [InlineData("Kestrel:EndpointDefaults:Protocols", "Http2", "Kestrel:EndpointDefaults:Protocols: 'Http2' leaves the Management endpoint without HTTP/1.1 (Kestrel:EndpointDefaults applies to the Management endpoint")]
    public void AManagementEndpointWithoutHttp11_IsAnError(string key, string value, string expected)
    {
        // Before: it started, and answered Kubernetes' probes and Prometheus' scrapes (HTTP/1.1) with 400.
        var error = Assert.Single(Errors((key, value)));

        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void None_SaysItWouldServeNothing_AndListsOnlyWhatServes()
    {
        // Before: "'None' is not one of None, Http1, ...".
        var error = Assert.Single(Errors(("Kestrel:Endpoints:Proxy:Protocols", "None")));

        Assert.Equal("Kestrel:Endpoints:Proxy:Protocols: 'None' would serve no protocol; use Http1, Http2, Http1AndHttp2, Http3, Http1AndHttp2AndHttp3.", error);
    }

    [Fact]
    public void Http3AloneOverHttps_IsAnError_OnlyWhereTheMachineHasNoQuic()
    {
        // Before, on a machine without libmsquic (this one): "Unable to bind an HTTP/3 endpoint" and exit 134.
        var errors = Errors(("Kestrel:Endpoints:Proxy:Url", "https://*:8443"), ("Kestrel:Endpoints:Proxy:Protocols", "Http3"));

#pragma warning disable CA1416 // the gateway's own check guards the platform; here only the answer matters
        var quic = System.Net.Quic.QuicListener.IsSupported;
#pragma warning restore CA1416
        if (quic)
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.StartsWith("Kestrel:Endpoints:Proxy:Protocols: 'Http3' alone needs QUIC, which this machine does not have", Assert.Single(errors), StringComparison.Ordinal);
        }

        Assert.Empty(Errors(("Kestrel:Endpoints:Proxy:Url", "https://*:8443"), ("Kestrel:Endpoints:Proxy:Protocols", "Http1AndHttp2AndHttp3")));
    }
}
