using Microsoft.Extensions.Configuration.Json;

namespace YarpGateway.Configuration;

/// <summary>
/// <c>--config PATH</c>: one more JSON file (a Kubernetes ConfigMap, say) layered over the
/// appsettings files and reloaded on change. It sits right after the last JSON file, so environment
/// variables and command-line values still override it, as they override appsettings.json.
/// </summary>
internal static class ConfigFileLayering
{
    public const string ArgumentName = "config";

    /// <summary>Adds the file named by <c>--config</c>, if any; returns an error when it is missing.</summary>
    public static ConfigError? AddConfigFile(IConfigurationManager configuration)
    {
        var path = configuration[ArgumentName];
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        var fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
        {
            return new ConfigError("--config", $"the file '{fullPath}' does not exist.");
        }

        var source = new JsonConfigurationSource
        {
            FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.GetDirectoryName(fullPath)!),
            Path = Path.GetFileName(fullPath),
            Optional = false,
            ReloadOnChange = true,
        };

        var sources = configuration.Sources;
        var lastJson = -1;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i] is JsonConfigurationSource)
            {
                lastJson = i;
            }
        }

        sources.Insert(lastJson + 1, source);
        return null;
    }

    /// <summary>
    /// Makes a file that stops parsing on reload visible. On .NET 10 the JSON provider then empties
    /// that file's data and, unless a load-exception handler says "ignore", raises no reload event at
    /// all, so nobody would notice until an unrelated reload applied the emptied data. Ignoring the
    /// exception raises the event; <see cref="GatewayConfigProvider"/> then finds the file with
    /// <see cref="ConfigSourceLocator.FindBrokenFiles"/> and keeps the last good configuration.
    /// Call after every file has loaded once: a file that does not parse at start-up still fails start-up.
    /// </summary>
    public static void ReportReloadFailuresAsChanges(IConfigurationManager configuration)
    {
        foreach (var source in configuration.Sources.OfType<FileConfigurationSource>())
        {
            source.OnLoadException = static context => context.Ignore = true;
        }
    }
}
