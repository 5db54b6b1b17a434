using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace YarpGateway.Endpoints;

/// <summary>
/// Whether Kestrel has the ASP.NET Core development certificate to fall back on, for an HTTPS endpoint given no
/// certificate: one in the user's <c>My</c> store (<c>dotnet dev-certs https</c> puts it there), marked with the
/// development certificate's extension, valid now and with its private key; or a development certificate file named in
/// <c>Kestrel:Certificates:Development</c>, which Kestrel reads itself. In a container neither is there, so such an
/// endpoint fails every start; this lets <c>--check</c> say so first.
/// </summary>
internal static class DevelopmentCertificate
{
    /// <summary>The extension <c>dotnet dev-certs</c> marks its certificate with, which Kestrel looks for.</summary>
    internal const string Oid = "1.3.6.1.4.1.311.84.1.1";

    public static bool Available(IConfiguration configuration, TimeProvider time)
    {
        if (configuration.GetSection("Kestrel:Certificates:Development").Exists())
        {
            return true; // Kestrel's own lookup of an exported file: left to it
        }

        try
        {
            using var store = new X509Store(StoreName.My, StoreLocation.CurrentUser);
            store.Open(OpenFlags.ReadOnly | OpenFlags.OpenExistingOnly);
            var now = time.GetLocalNow().DateTime;
            var found = false;
            foreach (var certificate in store.Certificates)
            {
                found |= certificate.Extensions[Oid] is not null && certificate.NotBefore <= now && now <= certificate.NotAfter && certificate.HasPrivateKey;
                certificate.Dispose();
            }

            return found;
        }
        catch (CryptographicException)
        {
            return false; // no store: a user without a home, or one never written
        }
    }
}
