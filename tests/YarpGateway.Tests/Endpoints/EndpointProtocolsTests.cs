using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Endpoints;

/// <summary>What <see cref="GatewayKestrelSetup.Validate"/> says of the HTTP and TLS protocols each endpoint would serve.</summary>
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

    [Theory]
    [InlineData("Tls12")]
    [InlineData("Tls13")]
    [InlineData("Tls12,Tls13")]
    [InlineData("Tls13,Tls12")]
    [InlineData("Tls11,Tls12,Tls13")] // TLS 1.1 is refused, TLS 1.2 and 1.3 served (tried)
    [InlineData("Tls,Tls11,Tls12")]
    [InlineData("Ssl3,Tls12")]
    public void TlsVersions_ARangeWithTls12OrTls13_AreValid(string list)
    {
        Assert.Null(GatewayKestrelSetup.TlsVersionsError(list.Split(',')));
    }

    [Theory]
    // Each started, and every TLS handshake failed with nothing logged (tried with curl and openssl s_client).
    [InlineData("Tls,Tls12,Tls13", "['Tls', 'Tls12', 'Tls13'] misses Tls11 between versions it lists")]
    [InlineData("Tls11,Tls13", "['Tls11', 'Tls13'] misses Tls12 between versions it lists")]
    [InlineData("Tls11", "['Tls11'] offers no TLS 1.2 or 1.3")]
    [InlineData("Tls,Tls11", "['Tls', 'Tls11'] offers no TLS 1.2 or 1.3")]
    [InlineData("Ssl3", "['Ssl3'] offers no TLS 1.2 or 1.3")]
    [InlineData("Default", "['Default'] offers no TLS 1.2 or 1.3")]
    public void TlsVersions_NoClientCouldUse_AreNamed(string list, string expected)
    {
        var error = GatewayKestrelSetup.TlsVersionsError(list.Split(','));

        Assert.NotNull(error);
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TlsVersions_AreCheckedOnEndpoints_TheirSniEntries_AndTheDefaults()
    {
        var errors = Errors(("Kestrel:Endpoints:Proxy:Url", "https://*:8443"), ("Kestrel:Endpoints:Proxy:SslProtocols:0", "Tls11"),
            ("Kestrel:Endpoints:Proxy:Sni:a.example:SslProtocols:0", "Tls"), ("Kestrel:Endpoints:Proxy:Sni:a.example:SslProtocols:1", "Tls13"),
            ("Kestrel:EndpointDefaults:SslProtocols:0", "Tls11"), ("Kestrel:EndpointDefaults:SslProtocols:1", "Tls13"));

        Assert.Contains(errors, e => e.StartsWith("Kestrel:Endpoints:Proxy:SslProtocols: ['Tls11'] offers no TLS 1.2 or 1.3", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Kestrel:Endpoints:Proxy:Sni:a.example:SslProtocols: ['Tls', 'Tls13'] misses Tls11", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Kestrel:EndpointDefaults:SslProtocols: ['Tls11', 'Tls13'] misses Tls12", StringComparison.Ordinal));
        Assert.Equal(3, errors.Count);
    }

    [Fact]
    public void AnSniEntrysValues_AreCheckedAsAnEndpoints()
    {
        // Before: Kestrel ignored each without a word, and served the name as if they were unset.
        var errors = Errors(("Kestrel:Endpoints:Proxy:Url", "https://*:8443"), ("Kestrel:Endpoints:Proxy:Sni:a.example:Protocols", "Http9"),
            ("Kestrel:Endpoints:Proxy:Sni:a.example:ClientCertificateMode", "Maybe"), ("Kestrel:Endpoints:Proxy:Sni:a.example:SslProtocols:0", "Tls9"));

        Assert.Equal(
            [
                "Kestrel:Endpoints:Proxy:Sni:a.example:ClientCertificateMode: 'Maybe' is not one of NoCertificate, AllowCertificate, RequireCertificate, DelayCertificate.",
                "Kestrel:Endpoints:Proxy:Sni:a.example:SslProtocols:0: 'Tls9' is not an SSL protocol; use Tls12 or Tls13.",
                "Kestrel:Endpoints:Proxy:Sni:a.example:Protocols: 'Http9' is not one of Http1, Http2, Http1AndHttp2, Http3, Http1AndHttp2AndHttp3.",
            ],
            errors);
    }

    [Fact]
    public void AnEndpointOtherThanProxyAndManagement_IsAnError()
    {
        var error = Assert.Single(Errors(("Kestrel:Endpoints:ProxyTls:Url", "https://*:8443")));

        Assert.StartsWith("Kestrel:Endpoints:ProxyTls: the gateway serves two endpoints, Proxy (proxied traffic) and Management (probes, /metrics, /status), and optionally HttpsRedirect (plain HTTP redirected to https); Kestrel would listen on 'https://*:8443'", error, StringComparison.Ordinal);
        Assert.Empty(Errors(("Kestrel:Endpoints:proxy:Url", "http://*:8080"))); // the Proxy endpoint: configuration keys are not case-sensitive
    }
}
