namespace YarpGateway.Configuration;

/// <summary>
/// The edits of one section as a reload that checks them before they apply sees them (<see cref="CheckedSectionReload"/>,
/// <see cref="Security.BearerOptionsReload"/>): a reload that leaves the section as it was is nothing; a file that no
/// longer parses waits (the proxy configuration's rejection names it); an edit with errors is refused, said once with the
/// file that set each value (the same refusal again is not said again, until the section goes back to what is in force);
/// an edit that checks out becomes what is in force, with what changed. Not thread-safe: the caller holds its lock.
/// </summary>
internal sealed class CheckedEdits(IConfiguration configuration, string section, Func<string, bool> showsValue)
{
    private string _appliedSnapshot = ConfigChanges.Snapshot(configuration, section);
    private IReadOnlyDictionary<string, string> _appliedKeys = Capture(configuration, section);
    private string? _lastRejection;

    /// <summary>What a reload brought: <paramref name="find"/> lists the section's errors; <paramref name="waits"/>, if it says so, leaves the edit for later.</summary>
    public Outcome Check(Func<List<ConfigError>> find, Func<bool>? waits = null)
    {
        var snapshot = ConfigChanges.Snapshot(configuration, section);
        if (snapshot == _appliedSnapshot)
        {
            _lastRejection = null; // a bad edit put back: the same bad edit again is said again
            return default;
        }

        if (ConfigSourceLocator.FindBrokenFiles(configuration).Count > 0 || waits?.Invoke() == true)
        {
            return default;
        }

        var errors = find();
        if (errors.Count > 0)
        {
            var rejection = string.Join(" ", ConfigSourceLocator.WithFiles(configuration, errors));
            if (rejection == _lastRejection)
            {
                return default;
            }

            _lastRejection = rejection;
            return new Outcome(rejection, null);
        }

        var keys = Capture(configuration, section);
        if (ConfigChanges.Snapshot(configuration, section) != snapshot)
        {
            return default; // a file was read again meanwhile: its reload waits for the caller's lock and reads it all
        }

        var changes = ConfigChanges.Describe(_appliedKeys, keys, showsValue);
        _lastRejection = null;
        _appliedSnapshot = snapshot;
        _appliedKeys = keys;
        return new Outcome(null, changes.Length > 0 ? changes : ConfigChanges.OnlyCase);
    }

    /// <summary>The section's keys, relative to it; a setting that is one value (<c>AllowedHosts</c>) by its own name.</summary>
    private static IReadOnlyDictionary<string, string> Capture(IConfiguration configuration, string section)
        => configuration[section] is { } value
            ? new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { [section] = value }
            : ConfigChanges.Capture(configuration, section);

    /// <summary>Nothing to say (both null), a refusal to say (with the files), or the changes an applied edit made.</summary>
    internal readonly record struct Outcome(string? Rejection, string? Changes);
}
