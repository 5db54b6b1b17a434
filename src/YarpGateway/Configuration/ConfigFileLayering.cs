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
}
