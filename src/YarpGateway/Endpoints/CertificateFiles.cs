using System.Security.Cryptography.X509Certificates;

namespace YarpGateway.Endpoints;

/// <summary>
/// A certificate given as files, the way Kestrel's <c>Certificate</c> section gives it: <c>Path</c> and <c>KeyPath</c>
/// (PEM, the key optionally encrypted with <c>Password</c>), or <c>Path</c> alone (PKCS#12, with <c>Password</c>).
/// </summary>
internal sealed record CertificateFiles(string Path, string? KeyPath, string? Password)
{
    /// <summary>
    /// The section an HTTPS endpoint's certificate comes from: its own <c>Certificate</c>, else
    /// <c>Kestrel:Certificates:Default</c> when its own names neither files nor a store certificate, as Kestrel reads them;
    /// null when it picks certificates by SNI.
    /// </summary>
    public static IConfigurationSection? SectionOf(IConfigurationSection endpoint, IConfiguration configuration)
    {
        if (endpoint.GetSection("Sni").Exists())
        {
            return null;
        }

        var own = endpoint.GetSection("Certificate");
        return own["Path"] is { Length: > 0 } || own["Subject"] is { Length: > 0 } ? own : configuration.GetSection("Kestrel:Certificates:Default");
    }

    /// <summary>The files a certificate section names; null for a store certificate (<c>Subject</c>, <c>Store</c>) or none.</summary>
    public static CertificateFiles? From(IConfigurationSection section)
        => section["Path"] is { Length: > 0 } path ? new CertificateFiles(path, section["KeyPath"] is { Length: > 0 } key ? key : null, section["Password"]) : null;

    /// <summary>The bytes of both files, to tell whether either changed.</summary>
    public byte[] Read()
        => KeyPath is null ? File.ReadAllBytes(Path) : [.. File.ReadAllBytes(Path), .. File.ReadAllBytes(KeyPath)];

    /// <summary>
    /// The certificate with its private key, and the rest of the chain the files hold (intermediates). Files that give no
    /// private key throw: the PEM loaders take the key from <see cref="KeyPath"/> or fail, and a PKCS#12 file without one is
    /// refused below.
    /// </summary>
    public (X509Certificate2 Leaf, X509Certificate2Collection Chain) Load()
    {
        if (KeyPath is not null)
        {
            var leaf = string.IsNullOrEmpty(Password)
                ? X509Certificate2.CreateFromPemFile(Path, KeyPath)
                : X509Certificate2.CreateFromEncryptedPemFile(Path, Password, KeyPath);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(Path);
            return (leaf, Without(all, leaf));
        }

        var collection = X509CertificateLoader.LoadPkcs12CollectionFromFile(Path, Password);
        var withKey = collection.FirstOrDefault(c => c.HasPrivateKey) ?? throw new InvalidOperationException("no certificate in the file has a private key");
        return (withKey, Without(collection, withKey));
    }

    private static X509Certificate2Collection Without(X509Certificate2Collection all, X509Certificate2 leaf)
    {
        var chain = new X509Certificate2Collection();
        foreach (var certificate in all)
        {
            if (certificate.Thumbprint != leaf.Thumbprint)
            {
                chain.Add(certificate);
            }
        }

        return chain;
    }
}
