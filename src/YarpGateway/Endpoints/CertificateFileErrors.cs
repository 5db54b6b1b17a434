using YarpGateway.Configuration;

namespace YarpGateway.Endpoints;

/// <summary>
/// The certificate files of each HTTPS endpoint, loaded as part of the configuration's checks (start-up and
/// <c>--check</c>). Kestrel loads them only as it binds, so <c>--check</c> called a configuration valid whose
/// certificate file was missing, whose key did not match it, or that gave a PEM certificate without its key, and every
/// pod started with it then exited (tried). An endpoint given no certificate at all is an error too when Kestrel has no
/// development certificate to fall back on (<see cref="DevelopmentCertificate"/>): none in a container, so every start
/// failed while <c>--check</c> approved. An endpoint whose certificate comes from a store or by SNI is left to Kestrel.
/// </summary>
internal static class CertificateFileErrors
{
    /// <summary>An error for each HTTPS endpoint whose certificate files do not give a certificate with its private key.</summary>
    public static IEnumerable<ConfigError> Find(IConfiguration configuration)
    {
        bool? development = null;
        foreach (var endpoint in configuration.GetSection("Kestrel:Endpoints").GetChildren())
        {
            if (endpoint["Url"]?.StartsWith("https://", StringComparison.OrdinalIgnoreCase) != true
                || CertificateFiles.SectionOf(endpoint, configuration) is not { } section)
            {
                continue;
            }

            if (CertificateFiles.From(section) is not { } files)
            {
                if (section["Subject"] is not { Length: > 0 } && !(development ??= DevelopmentCertificate.Available(configuration, TimeProvider.System)))
                {
                    yield return new ConfigError(endpoint.Path, $"the {endpoint.Key} endpoint is HTTPS and has no TLS certificate: give it one as {endpoint.Path}:Certificate (Path and KeyPath, or Subject and Store) or as Kestrel:Certificates:Default. Kestrel falls back on the ASP.NET Core development certificate, and this user has none (`dotnet dev-certs https` makes one, for development only).");
                }

                continue;
            }

            string? reason = null;
            try
            {
                var (leaf, chain) = files.Load(); // with its private key, or it throws
                leaf.Dispose(); // loaded to be checked only: Kestrel loads its own as it binds
                foreach (var certificate in chain)
                {
                    certificate.Dispose();
                }
            }
            catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
            {
                reason = files.KeyPath is null && IsPem(files.Path)
                    ? "the file is PEM, and a PEM certificate needs its key's file as KeyPath (the same path, if the key is in it); Path alone is for PKCS#12"
                    : Telemetry.ExceptionText.Describe(ex);
            }

            if (reason is not null)
            {
                yield return new ConfigError(section.Path, $"the TLS certificate of the {endpoint.Key} endpoint could not be loaded from {files.Path}{(files.KeyPath is null ? string.Empty : " and " + files.KeyPath)}: {reason}. Check Path, KeyPath and Password.");
            }
        }
    }

    private static bool IsPem(string path)
    {
        try
        {
            return File.ReadAllText(path).Contains("-----BEGIN ", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
