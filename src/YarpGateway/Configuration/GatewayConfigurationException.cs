namespace YarpGateway.Configuration;

/// <summary>The configuration cannot be used; <see cref="Errors"/> lists every problem found.</summary>
internal sealed class GatewayConfigurationException : Exception
{
    public GatewayConfigurationException(IReadOnlyList<ConfigError> errors)
        : base(Describe(errors))
    {
        Errors = errors;
    }

    public IReadOnlyList<ConfigError> Errors { get; }

    internal static string Describe(IReadOnlyList<ConfigError> errors)
    {
        var noun = errors.Count == 1 ? "error" : "errors";
        return $"The gateway configuration is invalid ({errors.Count} {noun}):{Environment.NewLine}"
            + string.Join(Environment.NewLine, errors.Select(e => "  - " + e));
    }
}
