using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Functional;

/// <summary>A renewed certificate on disk is served without a restart; files that do not load leave the current one serving.</summary>
public class CertificateReloadTests
{
    [Fact]
    public async Task ARenewedPemCertificate_SwappedInAsKubernetesMountsSecrets_IsServedToNewConnections()
    {
        // A Secret volume: tls.crt and tls.key link into ..data, a link to the current version's directory,
        // swapped in one rename when the Secret changes.
        var root = Directory.CreateTempSubdirectory("yarpgateway-certs-").FullName;
        using var first = WritePemVersion(root, "v1", "CN=first");
        Directory.CreateSymbolicLink(Path.Combine(root, "..data"), "v1");
        File.CreateSymbolicLink(Path.Combine(root, "tls.crt"), "..data/tls.crt");
        File.CreateSymbolicLink(Path.Combine(root, "tls.key"), "..data/tls.key");

        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), FastChecks,
            "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0",
            $"--Kestrel:Endpoints:Proxy:Certificate:Path={Path.Combine(root, "tls.crt")}",
            $"--Kestrel:Endpoints:Proxy:Certificate:KeyPath={Path.Combine(root, "tls.key")}");
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(gateway.ProxyAddress));

        using var second = WritePemVersion(root, "v2", "CN=second", validDays: 90); // renewed: a later expiry than the first's
        Directory.CreateSymbolicLink(Path.Combine(root, "..data_tmp"), "v2");
        Rename(Path.Combine(root, "..data_tmp"), Path.Combine(root, "..data"));

        Assert.True(await Eventually.TrueAsync(async () => await ServedThumbprintAsync(gateway.ProxyAddress) == second.Thumbprint, TimeSpan.FromSeconds(10)));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[CertificateReloaded]", StringComparison.Ordinal) && l.Contains("CN=second", StringComparison.Ordinal) && l.Contains("Proxy endpoint", StringComparison.Ordinal));
        Assert.Equal("a", await GetOverTlsAsync(gateway.ProxyAddress, second.Thumbprint));

        // The value from this gateway's own meter: in this test process every gateway's meter provider also sees
        // the other gateways' instruments of the same name, so a scrape's value may be another test's certificate.
        var expiry = new DateTimeOffset(second.NotAfter.ToUniversalTime()).ToUnixTimeSeconds();
        Assert.Equal([("Proxy", (double)expiry)], ObserveExpiry(gateway));

        using var management = gateway.CreateManagementClient();
        Assert.Contains("gateway_tls_certificate_expiry_seconds{endpoint=\"Proxy\"} ", await management.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    private static List<(string Endpoint, double Value)> ObserveExpiry(GatewayUnderTest gateway)
    {
        var meterFactory = gateway.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>();
        var observed = new List<(string, double)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "gateway.tls.certificate.expiry" && ReferenceEquals(instrument.Meter.Scope, meterFactory))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) => observed.Add(((string)tags[0].Value!, value)));
        listener.Start();
        listener.RecordObservableInstruments();
        return observed;
    }

    [Fact]
    public async Task APfxRewrittenWithSomethingThatDoesNotLoad_KeepsTheCurrentCertificate_AndSaysSoOnce_ThenAGoodOneIsTakenOn()
    {
        using var first = SelfSigned("CN=first");
        var path = WriteTemporaryPfx(first);

        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartWithPfxAsync(backend, path);

        WriteAtomically(path, "not a certificate"u8.ToArray());
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)));
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(gateway.ProxyAddress));

        using var second = SelfSigned("CN=second");
        WriteAtomically(path, second.Export(X509ContentType.Pfx, "pw"));
        Assert.True(await Eventually.TrueAsync(async () => await ServedThumbprintAsync(gateway.ProxyAddress) == second.Thumbprint, TimeSpan.FromSeconds(10)));
        Assert.Single(gateway.Logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal)); // once for that change, not once per check
    }

    [Fact]
    public async Task ACertificateNotValidNow_IsNotTakenOnInPlaceOfAValidOne_AndOneServedFromTheStartIsAWarning()
    {
        // Before: a Secret rolled back to an expired certificate was served from the next check, and every client refused
        // it; one the gateway started with was served without a word.
        using var first = SelfSigned("CN=first");
        var path = WriteTemporaryPfx(first);

        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartWithPfxAsync(backend, path);
        var served = Assert.Single(gateway.Logs.Lines, l => l.Contains("[CertificateServed]", StringComparison.Ordinal));
        Assert.StartsWith("Information ", served, StringComparison.Ordinal);
        Assert.Contains($"Proxy endpoint: CN=first, valid from {first.NotBefore.ToUniversalTime():u} until {first.NotAfter.ToUniversalTime():u}, thumbprint {first.Thumbprint}, from {path}.", served, StringComparison.Ordinal);

        using var expired = SelfSigned("CN=expired", from: DateTimeOffset.UtcNow.AddDays(-30), to: DateTimeOffset.UtcNow.AddDays(-1));
        WriteAtomically(path, expired.Export(X509ContentType.Pfx, "pw"));
        Assert.True(await Eventually.TrueAsync(() => gateway.Logs.Lines.Any(l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal)), TimeSpan.FromSeconds(10)));
        Assert.Contains(gateway.Logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal) && l.Contains($"CN=expired (thumbprint {expired.Thumbprint}) is not valid now", StringComparison.Ordinal));
        Assert.Equal(first.Thumbprint, await ServedThumbprintAsync(gateway.ProxyAddress));

        using var second = SelfSigned("CN=second", validDays: 90);
        WriteAtomically(path, second.Export(X509ContentType.Pfx, "pw"));
        Assert.True(await Eventually.TrueAsync(async () => await ServedThumbprintAsync(gateway.ProxyAddress) == second.Thumbprint, TimeSpan.FromSeconds(10)));

        await using var restarted = await StartWithPfxAsync(backend, WriteTemporaryPfx(expired));
        var warning = Assert.Single(restarted.Logs.Lines, l => l.Contains("[CertificateNotValid]", StringComparison.Ordinal));
        Assert.StartsWith("Warning ", warning, StringComparison.Ordinal);
        Assert.Contains("TLS certificate of the Proxy endpoint is not valid now: CN=expired", warning, StringComparison.Ordinal);
        Assert.Equal(expired.Thumbprint, await ServedThumbprintAsync(restarted.ProxyAddress)); // served all the same: nothing better to serve
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task CertificateFilesARestartCouldNotLoad_AreARestartError_AndNoLongerOnceFixed_WithoutAnEditOfTheConfiguration(bool edited)
    {
        // The restart check loads the certificate files since --check does; it ran again only after an edit of the
        // configuration, so a key fixed on disk would have been reported as a restart's failure until the next edit,
        // and a key broken on disk (without an edit) was not reported at all.
        var root = Directory.CreateTempSubdirectory("yarpgateway-certs-").FullName;
        using var key = RSA.Create(2048);
        using var certificate = SelfSigned("CN=first", key);
        var (crt, keyPath) = (Path.Combine(root, "tls.crt"), Path.Combine(root, "tls.key"));
        File.WriteAllText(crt, certificate.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());

        await using var backend = await TestBackend.StartAsync("a");
        var config = ProxyConfigJson.CatchAll("RoundRobin", (backend, null));
        await using var gateway = await GatewayUnderTest.StartAsync(config, FastChecks,
            "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0", $"--Kestrel:Endpoints:Proxy:Certificate:Path={crt}", $"--Kestrel:Endpoints:Proxy:Certificate:KeyPath={keyPath}");
        const string RestartErrors = "gateway.config.restart_errors";
        Assert.Equal(0, gateway.Counter(RestartErrors));

        using var other = RSA.Create(2048);
        WriteAtomically(keyPath, System.Text.Encoding.ASCII.GetBytes(other.ExportPkcs8PrivateKeyPem()));
        if (edited)
        {
            config["ReverseProxy"]!["Routes"]!["all"]!["Order"] = 1; // an edit of the configuration, so the restart check runs again
            gateway.WriteConfig(config);
        }

        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(RestartErrors) == 1, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.config"));
        var listed = gateway.Services.GetRequiredService<YarpGateway.Configuration.RestartCheck>().Errors;
        Assert.Contains("the TLS certificate of the Proxy endpoint could not be loaded", Assert.Single(listed).ToString(), StringComparison.Ordinal);

        WriteAtomically(keyPath, System.Text.Encoding.ASCII.GetBytes(key.ExportPkcs8PrivateKeyPem())); // fixed; the configuration as it was
        Assert.True(await Eventually.TrueAsync(() => gateway.Counter(RestartErrors) == 0, TimeSpan.FromSeconds(10)), gateway.DescribeCounters("gateway.config"));
        Assert.Equal(certificate.Thumbprint, await ServedThumbprintAsync(gateway.ProxyAddress));
    }

    /// <summary>A gateway whose Proxy endpoint serves the PKCS#12 file at <paramref name="path"/> (password "pw"), checked every 100 ms.</summary>
    private static Task<GatewayUnderTest> StartWithPfxAsync(TestBackend backend, string path)
        => GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)), FastChecks,
            "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0",
            $"--Kestrel:Endpoints:Proxy:Certificate:Path={path}",
            "--Kestrel:Endpoints:Proxy:Certificate:Password=pw");

    private static string WriteTemporaryPfx(X509Certificate2 certificate)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("yarpgateway-certs-").FullName, "proxy.pfx");
        File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, "pw"));
        return path;
    }

    private static void FastChecks(IServiceCollection services)
        => services.AddSingleton(sp => new CertificateReloader(TimeProvider.System, sp.GetRequiredService<ILogger<CertificateReloader>>()) { CheckInterval = TimeSpan.FromMilliseconds(100) });

    private static X509Certificate2 WritePemVersion(string root, string version, string subject, int validDays = 1)
    {
        var directory = Directory.CreateDirectory(Path.Combine(root, version)).FullName;
        using var key = RSA.Create(2048);
        var certificate = SelfSigned(subject, key, validDays);
        File.WriteAllText(Path.Combine(directory, "tls.crt"), certificate.ExportCertificatePem());
        File.WriteAllText(Path.Combine(directory, "tls.key"), key.ExportPkcs8PrivateKeyPem());
        return certificate;
    }

    private static X509Certificate2 SelfSigned(string subject, RSA? key = null, int validDays = 1, DateTimeOffset? from = null, DateTimeOffset? to = null)
    {
        using var own = key is null ? RSA.Create(2048) : null;
        var request = new CertificateRequest(subject, key ?? own!, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(from ?? DateTimeOffset.UtcNow.AddMinutes(-5), to ?? DateTimeOffset.UtcNow.AddDays(validDays));
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temporary = path + ".tmp";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>rename(2) of a link over a link, as the kubelet swaps ..data.</summary>
    private static void Rename(string from, string to)
    {
        if (Rename(from, to) != 0)
        {
            throw new IOException($"rename {from} -> {to} failed: {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "rename", SetLastError = true)]
        static extern int Rename(string from, string to);
    }

    private static async Task<string?> ServedThumbprintAsync(Uri address)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port, bound.Token);
        string? served = null;
        await using var tls = new SslStream(client.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                served = (certificate as X509Certificate2)?.Thumbprint;
                return served is not null; // the test asks which certificate was served, and trusts it for that

            },
        }, bound.Token);
        return served;
    }

    private static async Task<string> GetOverTlsAsync(Uri address, string thumbprint)
    {
        using var handler = new SocketsHttpHandler
        {
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, _) => (certificate as X509Certificate2)?.Thumbprint == thumbprint },
        };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        return await client.GetStringAsync(new Uri($"https://127.0.0.1:{address.Port}/x")); // ProxyAddress says http://
    }
}
