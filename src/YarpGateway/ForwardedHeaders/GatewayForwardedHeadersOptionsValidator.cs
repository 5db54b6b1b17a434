using System.Net;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>Lists every bad value under <c>Gateway:ForwardedHeaders</c> at once.</summary>
internal sealed class GatewayForwardedHeadersOptionsValidator : IValidateOptions<GatewayForwardedHeadersOptions>
{
    private const string Prefix = GatewayForwardedHeadersOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, GatewayForwardedHeadersOptions options)
    {
        var errors = new List<string>();
        foreach (var network in options.KnownNetworks)
        {
            if (!OptionChecks.TryParseNetwork(network, out _))
            {
                errors.Add($"{Prefix}KnownNetworks: '{network}' is not a network in CIDR notation (10.0.0.0/8) with no host bits set.");
            }
        }

        foreach (var proxy in options.KnownProxies)
        {
            if (!OptionChecks.TryParseAddress(proxy, out _))
            {
                errors.Add($"{Prefix}KnownProxies: '{proxy}' is not an IP address (four decimal numbers, 10.0.0.5, or IPv6).");
            }
        }

        if (options.ForwardLimit is < 1 or > 10)
        {
            errors.Add($"{Prefix}ForwardLimit must be from 1 to 10; got {options.ForwardLimit}.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
