namespace YarpGateway.Configuration;

/// <summary>One thing wrong with the configuration: where it is and what is wrong.</summary>
/// <param name="Key">The configuration key the error is about, e.g. <c>ReverseProxy:Clusters:api:Destinations:d1:Metadata:Weight</c>.</param>
/// <param name="Message">What is wrong, in words an operator can act on.</param>
internal sealed record ConfigError(string Key, string Message)
{
    /// <summary>The file that set <see cref="Key"/>, when one did; filled in by <see cref="ConfigSourceLocator"/>.</summary>
    public string? File { get; init; }

    /// <summary>
    /// For a route naming a policy that is not there: the section the policy was looked for in (<c>Gateway:OutputCache</c>)
    /// and its name. Start-up leaves such an error out when the file defines the policy and the section has a bad value of
    /// its own, listed: the binder dropped the policy, or the whole section, over that value (<see cref="FollowsFromABadSection"/>).
    /// </summary>
    public (string Section, string Name)? UndefinedPolicy { get; init; }

    /// <summary>
    /// Whether this error is only the echo of <paramref name="sectionErrors"/>: a route names a policy that the configuration
    /// defines, under a section with errors of its own. "'c' is not a policy (none are defined)" beside a file that defines
    /// it would send the operator looking for a mistake that is not there; start-up fails on the bad value either way.
    /// Not for a reload, where a policy the gateway did not start with is missing indeed.
    /// </summary>
    public bool FollowsFromABadSection(IReadOnlyCollection<ConfigError> sectionErrors, IConfiguration configuration)
    {
        if (UndefinedPolicy is not { } policy || !configuration.GetSection(policy.Section + ":Policies:" + policy.Name).Exists())
        {
            return false;
        }

        var prefix = policy.Section + ":";
        return sectionErrors.Any(e => e.Key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// An options validator's failure for <paramref name="section"/>. Validators begin each failure with the key it is
    /// about (<c>Gateway:WebSockets:OutboundBufferBytes must be ...</c>): that key is the error's, so that the file that
    /// set that very key is named, and the message is not preceded by its own key a second time.
    /// </summary>
    public static ConfigError FromFailure(string section, string failure)
    {
        var space = failure.IndexOf(' ', StringComparison.Ordinal);
        var key = space > 0 ? failure[..space].TrimEnd(':') : string.Empty;
        var named = section.Length == 0 ? key.Contains(':', StringComparison.Ordinal) : key.StartsWith(section + ":", StringComparison.OrdinalIgnoreCase);
        return new ConfigError(named ? key : section, failure); // no section: options failing before start-up's check (Gateway:Transport)
    }

    public override string ToString()
    {
        var where = Key.Length == 0 || (Message.StartsWith(Key, StringComparison.Ordinal) && Message.Length > Key.Length && Message[Key.Length] is ' ' or ':')
            ? string.Empty
            : Key + ": ";
        return File is null ? where + Message : $"{File}: {where}{Message}";
    }
}
