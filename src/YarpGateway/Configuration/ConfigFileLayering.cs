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

    /// <summary>Adds the file named by <c>--config</c>, if any; returns an error when it is missing, a directory or unreadable.</summary>
    public static ConfigError? AddConfigFile(IConfigurationManager configuration)
    {
        var path = configuration[ArgumentName];
        if (string.IsNullOrWhiteSpace(path))
        {
            return null;
        }

        var fullPath = Path.GetFullPath(path);
        if (Directory.Exists(fullPath))
        {
            return new ConfigError("--config", $"'{fullPath}' is a directory; give the path of the JSON file in it.");
        }

        // Opened here so that a file the process may not read is a one-line error, not the runtime's
        // unhandled exception from inside the configuration (exit 134, forty lines of stack): a
        // Secret or ConfigMap mounted with a mode the gateway's user cannot read. (File.Exists says
        // false for a file in a directory the user may not enter: the open tells the two apart.)
        try
        {
            using var readable = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return new ConfigError("--config", $"the file '{fullPath}' does not exist.");
        }
        catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
        {
            return new ConfigError("--config", $"the file '{fullPath}' cannot be read ({ex.Message.TrimEnd('.')}). Make it readable by the user the gateway runs as (1654 in the image; in Kubernetes, the volume's defaultMode or the pod's fsGroup).");
        }

        var source = new JsonConfigurationSource
        {
            FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.GetDirectoryName(fullPath)!),
            Path = Path.GetFileName(fullPath),
            Optional = false,
            ReloadOnChange = false, // watched by LastGoodJsonConfigurationSource, which stands in for it, not by a watcher made here
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
