using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace YarpGateway.Tests.Functional;

/// <summary>A self-signed certificate for 127.0.0.1, for a proxy endpoint served over TLS.</summary>
internal static class TestCertificate
{
    /// <summary>
    /// Writes a new certificate to a temporary PFX and returns the gateway arguments that serve the
    /// proxy endpoint with it on a loopback port, and its thumbprint for the client to check.
    /// </summary>
    public static async Task<(string[] Args, string Thumbprint)> ProxyTlsArgsAsync()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("yarpgateway-tls-").FullName, "proxy.pfx");
        using var certificate = SelfSignedLoopback();
        await File.WriteAllBytesAsync(path, certificate.Export(X509ContentType.Pfx, "test"));
        return (["--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0", $"--Kestrel:Endpoints:Proxy:Certificate:Path={path}", "--Kestrel:Endpoints:Proxy:Certificate:Password=test"], certificate.Thumbprint);
    }

    /// <summary>A TLS connection to <paramref name="address"/> that negotiated HTTP/2 by ALPN, trusting only <paramref name="thumbprint"/>.</summary>
    public static async Task<SslStream> ConnectHttp2Async(Uri address, string thumbprint, CancellationToken cancellationToken)
    {
        var client = new TcpClient();
        await client.ConnectAsync(address.Host, address.Port, cancellationToken);
        var tls = new SslStream(client.GetStream(), leaveInnerStreamOpen: false);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "127.0.0.1",
            ApplicationProtocols = [SslApplicationProtocol.Http2],
            RemoteCertificateValidationCallback = (_, served, _, _) => served is X509Certificate2 c && c.Thumbprint == thumbprint,
        }, cancellationToken);
        Assert.Equal(SslApplicationProtocol.Http2, tls.NegotiatedApplicationProtocol);
        return tls;
    }

    internal static X509Certificate2 SelfSignedLoopback()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
    }
}
