using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Time.Testing;
using YarpGateway.Endpoints;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Endpoints;

/// <summary>
/// Certificate files are read on a fake clock. A file written in place (truncated, then written) can be read halfway:
/// that read is not yet a failure.
/// </summary>
public sealed class CertificateReloaderTests : IDisposable
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan SettleDelay = TimeSpan.FromSeconds(1);

    private readonly string _path = Path.Combine(Directory.CreateTempSubdirectory("yarpgateway-certs-").FullName, "proxy.pfx");
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private readonly CapturingLoggerProvider _logs = new();
    private readonly CertificateReloader _reloader;

    public CertificateReloaderTests()
        => _reloader = new CertificateReloader(_clock, new LoggerFactory([_logs]).CreateLogger<CertificateReloader>()) { CheckInterval = CheckInterval, SettleDelay = SettleDelay };

    [Fact]
    public void ACheckThatReadsAFileHalfWritten_DoesNotCallItAFailure_AndTakesOnTheWholeFileWithinTheSettleDelay()
    {
        using var first = SelfSigned("CN=first");
        using var second = SelfSigned("CN=second");
        var https = Watch(first);

        // Before: this read was logged as a failure (CertificateReloadFailed, a warning), and the certificate written
        // a moment later was taken on only at the next check, CheckInterval later.
        var whole = second.Export(X509ContentType.Pfx, "pw");
        File.WriteAllBytes(_path, whole[..(whole.Length / 2)]);
        _clock.Advance(CheckInterval);
        Assert.Equal(first.Thumbprint, Served(https));

        File.WriteAllBytes(_path, whole);
        _clock.Advance(SettleDelay);
        Assert.Equal(second.Thumbprint, Served(https));
        Assert.DoesNotContain(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));
        Assert.Single(_logs.Lines, l => l.Contains("[CertificateReloaded]", StringComparison.Ordinal));
    }

    [Fact]
    public void FilesThatStayUnloadable_AreAFailure_SaidOnceAfterTheSettleDelay_AndTheCurrentCertificateKeepsServing()
    {
        using var first = SelfSigned("CN=first");
        var https = Watch(first);

        File.WriteAllBytes(_path, "not a certificate"u8.ToArray());
        _clock.Advance(CheckInterval);
        Assert.DoesNotContain(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));

        _clock.Advance(SettleDelay);
        var failed = Assert.Single(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));
        Assert.StartsWith("Warning ", failed, StringComparison.Ordinal);
        Assert.Contains("It keeps serving CN=first", failed, StringComparison.Ordinal);

        _clock.Advance(CheckInterval * 3); // unchanged since: nothing more to say
        Assert.Single(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));
        Assert.Equal(first.Thumbprint, Served(https));

        using var second = SelfSigned("CN=second");
        File.WriteAllBytes(_path, second.Export(X509ContentType.Pfx, "pw"));
        _clock.Advance(CheckInterval);
        Assert.Equal(second.Thumbprint, Served(https));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFileThatKeepsChangingAndNeverLoads_IsReadAgainEachSettleDelay_UntilItHoldsStill_OrAtMostFiveTimes(bool holdsStill)
    {
        using var first = SelfSigned("CN=first");
        Watch(first);

        for (var i = 0; i < CertificateReloader.MaxUnsettledReads; i++)
        {
            File.WriteAllBytes(_path, System.Text.Encoding.ASCII.GetBytes($"still being written {i}"));
            _clock.Advance(i == 0 ? CheckInterval : SettleDelay);
        }

        Assert.DoesNotContain(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));
        if (!holdsStill)
        {
            File.WriteAllBytes(_path, "changed at every read"u8.ToArray()); // a writer gone wrong: said, not waited on forever
        }

        _clock.Advance(SettleDelay);
        Assert.Single(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));
        _clock.Advance(CheckInterval * 2);
        Assert.Single(_logs.Lines, l => l.Contains("[CertificateReloadFailed]", StringComparison.Ordinal));
    }

    /// <summary>
    /// A check already running when the reloader is disposed (the host stopping; a timer's callback is not waited for) that
    /// finds the files changed: it cancelled the disposed change token, and the exception on a timer's thread ended the
    /// process (seen: the test host crashed with "The CancellationTokenSource has been disposed" at the end of a run).
    /// </summary>
    [Fact]
    public void ACheckThatEndsAfterDisposal_WithTheFilesChanged_DoesNotThrow()
    {
        using var first = SelfSigned("CN=first");
        using var second = SelfSigned("CN=second");
        Watch(first);
        File.WriteAllBytes(_path, second.Export(X509ContentType.Pfx, "pw"));

        _reloader.Dispose();
        _reloader.Check();
    }

    /// <summary>Starts watching <see cref="_path"/>, written with <paramref name="certificate"/>, as Kestrel's endpoint callback does.</summary>
    private HttpsConnectionAdapterOptions Watch(X509Certificate2 certificate)
    {
        File.WriteAllBytes(_path, certificate.Export(X509ContentType.Pfx, "pw"));
        var https = new HttpsConnectionAdapterOptions { ServerCertificate = certificate };
        var section = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Certificate:Path"] = _path, ["Certificate:Password"] = "pw" })
            .Build()
            .GetSection("Certificate");
        _reloader.Watch("Proxy", https, section);
        return https;
    }

    /// <summary>The thumbprint a new handshake would be given: the reloaded context's, else what Kestrel loaded.</summary>
    private static string Served(HttpsConnectionAdapterOptions https)
    {
        var ssl = new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = https.ServerCertificate };
        https.OnAuthenticate?.Invoke(null!, ssl);
        return (ssl.ServerCertificateContext?.TargetCertificate ?? (X509Certificate2)ssl.ServerCertificate!).Thumbprint;
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }

    public void Dispose()
    {
        _reloader.Dispose();
        Directory.Delete(Path.GetDirectoryName(_path)!, recursive: true);
    }
}
