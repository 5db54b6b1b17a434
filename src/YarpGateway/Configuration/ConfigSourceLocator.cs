using System.Text.Json;
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

    private static readonly JsonDocumentOptions JsonOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Returns the errors with <see cref="ConfigError.File"/> set where a JSON file set the key.</summary>
    public static IReadOnlyList<ConfigError> WithFiles(IConfiguration configuration, IEnumerable<ConfigError> errors)
        => errors.Select(e => e.File is null ? e with { File = FindFile(configuration, e.Key) } : e).ToList();

    /// <summary>The physical path of the last JSON file that defines <paramref name="key"/> or anything below it.</summary>
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
                if (provider is JsonConfigurationProvider json && Defines(provider, candidate))
                {
                    return PhysicalPath(json.Source);
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Errors for every JSON configuration file that exists but does not parse, and every required one
    /// that is gone: as its provider found it on its last reload (the gateway's files), or, for a plain
    /// JSON provider, by reading the file now.
    /// </summary>
    public static IReadOnlyList<ConfigError> FindBrokenFiles(IConfiguration configuration)
    {
        if (configuration is not IConfigurationRoot root)
        {
            return [];
        }

        var errors = new List<ConfigError>();
        foreach (var json in root.Providers.OfType<JsonConfigurationProvider>())
        {
            var path = PhysicalPath(json.Source);
            if (path is null)
            {
                continue;
            }

            if (json is LastGoodJsonConfigurationSource.Provider watched)
            {
                // It read the file on its last reload, and says what it found.
                if (watched.Broken is { } broken)
                {
                    errors.Add(new ConfigError("(file)", $"{broken} {KeepsLastGood}") { File = path });
                }

                continue;
            }

            if (!System.IO.File.Exists(path))
            {
                if (!json.Source.Optional)
                {
                    errors.Add(new ConfigError("(file)", $"is missing (deleted or renamed). {KeepsLastGood}") { File = path });
                }

                continue;
            }

            try
            {
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var document = JsonDocument.Parse(stream, JsonOptions);
            }
            catch (JsonException ex)
            {
                errors.Add(new ConfigError("(file)", $"not valid JSON: {ex.Message} {KeepsLastGood}") { File = path });
            }
            catch (IOException ex)
            {
                errors.Add(new ConfigError("(file)", $"cannot be read: {ex.Message} {KeepsLastGood}") { File = path });
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
