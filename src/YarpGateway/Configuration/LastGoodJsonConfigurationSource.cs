using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// A JSON configuration file that keeps its last good contents when a reload finds it broken: invalid
/// JSON, a key twice, unreadable, or (for a required file, <c>--config</c>) gone. The runtime's JSON provider
/// empties the file's data then, so every key it set (log levels, <c>AllowedHosts</c>, Kestrel's
/// settings, not only the routes and <c>Gateway:*</c>, which already skip such a reload) would fall
/// back to the layer below it until the file is fixed. Here nothing changes; the reload event still
/// fires, and <see cref="ConfigSourceLocator.FindBrokenFiles"/> names the file in the rejection.
/// A file that does not parse at start-up still fails start-up, and an optional file that is removed
/// takes its keys with it, as before: removing a layer on purpose is an edit, not a breakage.
/// </summary>
internal sealed class LastGoodJsonConfigurationSource : JsonConfigurationSource
{
    /// <summary>Replaces every plain JSON file source (the appsettings files, <c>--config</c>) with one that keeps its last good contents.</summary>
    public static void KeepLastGoodOnReload(IConfigurationManager configuration)
    {
        var sources = configuration.Sources;
        for (var i = 0; i < sources.Count; i++)
        {
            if (sources[i].GetType() == typeof(JsonConfigurationSource) && sources[i] is JsonConfigurationSource { Path: { } path } json)
            {
                sources[i] = new LastGoodJsonConfigurationSource
                {
                    FileProvider = json.FileProvider,
                    Path = path,
                    Optional = json.Optional,
                    ReloadOnChange = false, // the provider watches the file itself
                    WatchForChanges = json.ReloadOnChange,
                    ReloadDelay = json.ReloadDelay,
                };
            }
        }
    }

    /// <summary>Reload the file when it changes (what <see cref="FileConfigurationSource.ReloadOnChange"/> asked of the source this one replaced).</summary>
    public bool WatchForChanges { get; init; }

    public override IConfigurationProvider Build(IConfigurationBuilder builder)
    {
        EnsureDefaults(builder);
        return new Provider(this);
    }

    /// <summary>
    /// Watches the file itself instead of letting the base class do it, because the base class's
    /// reload empties the data on a broken or missing file before anyone can intervene.
    /// </summary>
    internal sealed class Provider : JsonConfigurationProvider
    {
        private readonly IDisposable? _watch;

        public Provider(LastGoodJsonConfigurationSource source)
            : base(source)
        {
            if (source.WatchForChanges && source.FileProvider is { } files && source.Path is { } path)
            {
                _watch = ChangeToken.OnChange(() => files.Watch(path), Reload);
            }
        }

        /// <summary>
        /// What is wrong with the file since the last reload (it is kept at its last good contents
        /// meanwhile), or null when that reload read it: for <see cref="ConfigSourceLocator.FindBrokenFiles"/>,
        /// which then need not read the file again, and sees exactly what this provider saw.
        /// </summary>
        public string? Broken { get; private set; }

        /// <summary>
        /// After a change: new contents if the file parses, none if an optional file was removed,
        /// and otherwise the last good contents. Raises the reload event in every case.
        /// </summary>
        private void Reload()
        {
            Thread.Sleep(Source.ReloadDelay); // as the base class does: let the writer finish
            var file = Source.FileProvider?.GetFileInfo(Source.Path ?? string.Empty);
            if (file is null || !file.Exists)
            {
                if (Source.Optional)
                {
                    Data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
                    Broken = null;
                }
                else
                {
                    Broken = "is missing (deleted or renamed).";
                }
            }
            else
            {
                try
                {
                    using var stream = OpenRead(file);
                    Load(stream); // sets Data only once the whole file has parsed
                    Broken = null;
                }
                catch (FormatException ex)
                {
                    // JSON that does not parse (the runtime wraps the parser's error), or JSON the
                    // configuration cannot take (a key twice).
                    Broken = ex.InnerException is System.Text.Json.JsonException json ? $"not valid JSON: {json.Message}" : $"not usable as configuration: {ex.Message}";
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    Broken = $"cannot be read: {ex.Message}";
                }
            }

            OnReload();
        }

        private static Stream OpenRead(IFileInfo file)
            => file.PhysicalPath is { } path
                ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete)
                : file.CreateReadStream();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _watch?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
