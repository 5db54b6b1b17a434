using System.Net;
using Microsoft.Extensions.Options;

namespace YarpGateway.ProxyProtocol;

/// <summary>Lists every bad value under <c>Gateway:ProxyProtocol</c> at once.</summary>
internal sealed class ProxyProtocolOptionsValidator : IValidateOptions<ProxyProtocolOptions>
{
    public ValidateOptionsResult Validate(string? name, ProxyProtocolOptions options)
    {
        var errors = new List<string>();
        foreach (var network in options.TrustedNetworks)
        {
            if (!TryParseNetwork(network, out _))
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

    /// <summary>A network in CIDR notation with no host bits set (.NET clears them silently, which would trust more than written).</summary>
    internal static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        network = default;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        return slash > 0 && IPNetwork.TryParse(text, out network) && IPAddress.TryParse(text.AsSpan(0, slash), out var address) && network.BaseAddress.Equals(address);
    }
}
