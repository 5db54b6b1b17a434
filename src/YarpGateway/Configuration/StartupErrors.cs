using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace YarpGateway.Configuration;

/// <summary>
/// Turns what can go wrong while the gateway starts into one message for the operator: every
/// configuration error, the file that would not parse, the port that is taken, the TLS certificate
/// that would not load.
/// </summary>
internal static class StartupErrors
{
    public static bool TryDescribe(Exception exception, out string message)
    {
        for (Exception? ex = exception; ex is not null; ex = ex.InnerException)
        {
            switch (ex)
            {
                case GatewayConfigurationException config:
                    message = config.Message;
                    return true;
                case OptionsValidationException options:
                    message = GatewayConfigurationException.Describe(options.Failures.Select(f => ConfigError.FromFailure(options.OptionsName, f)).ToList());
                    return true;
                case InvalidDataException data when data.Message.Contains("configuration", StringComparison.OrdinalIgnoreCase):
                    message = $"A configuration file could not be read: {data.Message} {data.InnerException?.Message}".TrimEnd();
                    return true;
                case IOException io when io.InnerException is AddressInUseException:
                    message = $"A listening port is already in use: {io.Message} Change Kestrel:Endpoints:*:Url or stop the other process.";
                    return true;
                case Exception certificate when IsCertificateLoading(certificate):
                    message = $"A TLS certificate could not be loaded: {certificate.GetType().Name}: {certificate.Message} Check Kestrel:Endpoints:*:Certificate (Path, KeyPath, Password) or Kestrel:Certificates:Default.";
                    return true;
            }
        }

        message = string.Empty;
        return false;
    }

    // Thrown while Kestrel loads an endpoint's certificate (a file missing or unreadable, a wrong
    // password, a file that is not a certificate), or an HTTPS endpoint with none at all; or while it builds the endpoint's
    // TLS from it (a PEM certificate given without its KeyPath, and no key in the file: "The server mode SSL must use a
    // certificate with the associated private key", an unhandled exception and exit 134 before; tried).
    private static bool IsCertificateLoading(Exception exception)
        => exception.StackTrace?.Contains("CertificateConfigLoader.LoadCertificate", StringComparison.Ordinal) == true
            || (exception is NotSupportedException && exception.StackTrace?.Contains("HttpsConnectionMiddleware..ctor", StringComparison.Ordinal) == true)
            || (exception is InvalidOperationException && exception.Message.Contains("No server certificate was specified", StringComparison.Ordinal));
}
