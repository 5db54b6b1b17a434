using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// Backends over HTTPS with a certificate from an internal CA: every request got 502 with a line that named only the
/// chain status (UntrustedRoot), and nothing said how to trust the CA.
/// </summary>
public class BackendTlsTests
{
    [Fact]
    public async Task ABackendsCertificateNotTrusted_Is502_AndTheLineSaysHowToTrustItsCA()
    {
        await using var backend = await TestBackend.StartHttpsAsync("internal", HttpProtocols.Http1AndHttp2);
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll(new Uri($"https://127.0.0.1:{backend.Port}/")));
        using var client = gateway.CreateProxyClient();

        using var response = await client.GetAsync("/x");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(0, backend.Requests);
        var line = Assert.Single(gateway.Logs.Lines, l => l.Contains("[ProxyError]", StringComparison.Ordinal));
        Assert.Contains("UntrustedRoot", line, StringComparison.Ordinal);
        Assert.Contains("not signed by a CA this gateway trusts: add the CA with SSL_CERT_DIR (see Backends over HTTPS in docs/configuration.md)", line, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SSL_CERT_DIR")]
    [InlineData("SSL_CERT_FILE")]
    public async Task ACAGivenInTheEnvironment_IsTrusted_BesideTheSystemsOwn(string variable)
    {
        // What the docs tell an operator to do (SSL_CERT_DIR keeps the system's CAs in its list), tried on the real process.
        using var certificate = TestCertificate.SelfSignedLoopback();
        var directory = Directory.CreateTempSubdirectory("yarpgateway-ca-").FullName;
        var file = Path.Combine(directory, "internal-ca.crt");
        await File.WriteAllTextAsync(file, certificate.ExportCertificatePem());
        await using var backend = await TestBackend.StartHttpsAsync("internal", HttpProtocols.Http1AndHttp2, certificate);
        var config = ProxyConfigJson.WriteTemp("yarpgateway-ca-", ProxyConfigJson.CatchAll(new Uri($"https://127.0.0.1:{backend.Port}/")).ToJsonString());
        var value = variable == "SSL_CERT_DIR" ? "/etc/ssl/certs:" + directory : file;
        using var gateway = GatewayProcess.Start("Production", new Dictionary<string, string> { [variable] = value },
            "--config", config, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(15) };

        using var response = await client.GetAsync("/x");

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {gateway.StandardOutput}");
        Assert.Equal(1, backend.Requests);
        Directory.Delete(directory, recursive: true);
    }
}
