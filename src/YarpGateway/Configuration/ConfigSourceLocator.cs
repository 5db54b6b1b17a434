using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;

namespace YarpGateway.Configuration;

/// <summary>
/// Answers "which file set this key?" for error messages, and checks that every JSON file the
/// configuration reads still parses and that a required one (<c>--config</c>) is still there. Such a
/// file keeps its last good contents (<see cref="LastGoodJsonConfigurationSource"/>), and while one
/// is broken nothing is reloaded either: the routes and every <c>Gateway:*</c> setting keep their
/// last good values, and the rejection names the file.
/// </summary>
internal static class ConfigSourceLocator
{
    private const string KeepsLastGood = "Until it is fixed, the routes and every other setting keep their last good values.";

    /// <summary>Returns the errors with <see cref="ConfigError.File"/> set where a JSON file set the key.</summary>
    public static IReadOnlyList<ConfigError> WithFiles(IConfiguration configuration, IEnumerable<ConfigError> errors)
        => errors.Select(e => e.File is null ? e with { File = FindFile(configuration, e.Key) } : e).ToList();

    /// <summary>
    /// Where the value of <paramref name="key"/> (or anything below it) that the gateway reads was
    /// set: the physical path of a JSON file, <c>command line</c>, <c>environment variable</c>, or
    /// null for another layer. The last layer that defines it is the one read, so a file below a
    /// command-line or environment override is not named.
    /// </summary>
    public static string? FindFile(IConfiguration configuration, string key)
    {
        if (configuration is not IConfigurationRoot root)
        {
            return null;
        }

        // Walk up from the key: a YARP validation error names a route or cluster, not a leaf.
        for (var candidate = key; candidate.Length > 0; candidate = Parent(candidate))
        {
            foreach (var provider in root.Providers.Reverse())
            {
                if (Defines(provider, candidate))
                {
                    return IndexedConfigurationSource.Unwrapped(provider) switch
                    {
                        JsonConfigurationProvider json => PhysicalPath(json.Source),
                        Microsoft.Extensions.Configuration.CommandLine.CommandLineConfigurationProvider => "command line",
                        Microsoft.Extensions.Configuration.EnvironmentVariables.EnvironmentVariablesConfigurationProvider => "environment variable",
                        _ => null,
                    };
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Errors for every JSON configuration file whose last reload found it broken (not valid JSON, a
    /// key twice, unreadable) or, for a required one, gone: as its provider found it
    /// (<see cref="LastGoodJsonConfigurationSource.Provider.Broken"/>), so the file is not read again
    /// here, once per listener and reload. Every JSON file source is one of those from
    /// <c>AddGateway</c> on; a file broken at start-up fails start-up in its provider.
    /// </summary>
    public static IReadOnlyList<ConfigError> FindBrokenFiles(IConfiguration configuration)
    {
        if (configuration is not IConfigurationRoot root)
        {
            return [];
        }

        var errors = new List<ConfigError>();
        foreach (var watched in root.Providers.OfType<LastGoodJsonConfigurationSource.Provider>())
        {
            if (watched.Broken is { } broken && PhysicalPath(watched.Source) is { } path)
            {
                errors.Add(new ConfigError("(file)", $"{broken} {KeepsLastGood}") { File = path });
            }
        }

        return errors;
    }

    private static bool Defines(IConfigurationProvider provider, string key)
        => provider.TryGet(key, out _) || provider.GetChildKeys([], key).Any();

    private static string Parent(string key)
    {
        var index = key.LastIndexOf(':');
        return index < 0 ? string.Empty : key[..index];
    }

    private static string? PhysicalPath(FileConfigurationSource source)
    {
        if (source.Path is null)
        {
            return null;
        }

        var fileInfo = source.FileProvider?.GetFileInfo(source.Path);
        return fileInfo?.PhysicalPath ?? (Path.IsPathRooted(source.Path) ? source.Path : null);
    }
}
