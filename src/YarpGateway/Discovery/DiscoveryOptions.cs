using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.Discovery;

/// <summary>Options under <c>Gateway:Discovery</c>: destinations resolved from DNS, one per address (see <see cref="DnsDiscovery"/>).</summary>
internal sealed class DiscoveryOptions
{
    public const string SectionName = "Gateway:Discovery";

    /// <summary>
    /// Resolve every cluster's host-name destinations, unless a cluster says otherwise in its
    /// <c>Metadata: { "Discovery": "Dns" | "None" }</c>. Default false: a cluster opts in.
    /// </summary>
    public bool Dns { get; set; }

    /// <summary>How often a resolved name is looked up again. Default 10 s (YARP's default is 5 minutes; pods come and go faster).</summary>
    public TimeSpan RefreshPeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How soon a name that failed to resolve (or resolved to nothing) is tried again. Default 2 s.</summary>
    public TimeSpan RetryPeriod { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>Both periods must be positive.</summary>
internal sealed class DiscoveryOptionsValidator : IValidateOptions<DiscoveryOptions>
{
    public ValidateOptionsResult Validate(string? name, DiscoveryOptions options)
    {
        var errors = new List<string>();
        OptionChecks.Positive(errors, DiscoveryOptions.SectionName + ":RefreshPeriod", options.RefreshPeriod);
        OptionChecks.Positive(errors, DiscoveryOptions.SectionName + ":RetryPeriod", options.RetryPeriod);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
