using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.ProxyProtocol;

/// <summary>Lists every bad value under <c>Gateway:ProxyProtocol</c> at once.</summary>
internal sealed class ProxyProtocolOptionsValidator : IValidateOptions<ProxyProtocolOptions>
{
    public ValidateOptionsResult Validate(string? name, ProxyProtocolOptions options)
    {
        var errors = new List<string>();
        foreach (var network in options.TrustedNetworks)
        {
            if (!OptionChecks.TryParseNetwork(network, out _))
            {
                errors.Add($"{ProxyProtocolOptions.SectionName}:TrustedNetworks: '{network}' is not a network in CIDR notation (10.0.0.0/8, fd00::/8) with no host bits set.");
            }
        }

        if (!options.Enabled && (options.TrustedNetworks.Count > 0 || !options.Required))
        {
            errors.Add($"{ProxyProtocolOptions.SectionName}:Enabled is not true, but TrustedNetworks or Required is set: no header would be read.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
