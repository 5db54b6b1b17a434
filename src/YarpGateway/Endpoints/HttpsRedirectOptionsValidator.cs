using Microsoft.Extensions.Options;

namespace YarpGateway.Endpoints;

/// <summary>The port is a TCP port, 1 to 65535; at least one connection is allowed.</summary>
internal sealed class HttpsRedirectOptionsValidator : IValidateOptions<HttpsRedirectOptions>
{
    public ValidateOptionsResult Validate(string? name, HttpsRedirectOptions options)
    {
        var errors = new List<string>();
        if (options.Port is < 1 or > 65535)
        {
            errors.Add($"{HttpsRedirectOptions.SectionName}:Port must be a TCP port, 1 to 65535 (it was {options.Port}).");
        }

        if (options.MaxConnections < 1)
        {
            errors.Add($"{HttpsRedirectOptions.SectionName}:MaxConnections must be at least 1 (it was {options.MaxConnections}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
