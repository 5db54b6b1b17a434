namespace YarpGateway.Configuration;

/// <summary>One thing wrong with the configuration: where it is and what is wrong.</summary>
/// <param name="Key">The configuration key the error is about, e.g. <c>ReverseProxy:Clusters:api:Destinations:d1:Metadata:Weight</c>.</param>
/// <param name="Message">What is wrong, in words an operator can act on.</param>
internal sealed record ConfigError(string Key, string Message)
{
    /// <summary>The file that set <see cref="Key"/>, when one did; filled in by <see cref="ConfigSourceLocator"/>.</summary>
    public string? File { get; init; }

    public override string ToString() => File is null ? $"{Key}: {Message}" : $"{File}: {Key}: {Message}";
}
