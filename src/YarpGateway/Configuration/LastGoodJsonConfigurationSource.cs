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
/// The file's size and time are also looked at every <see cref="CheckInterval"/>: the file watcher's
/// notification can be lost (seen on Linux, an edit not applied until the next one), and a saved edit
/// must not wait for another to take effect. A read that finds the file broken while it is still being
/// written (empty or cut short by a writer that truncates, then writes) reads it again once it has settled,
/// instead of rejecting an edit that was not finished.
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
                    WatchForChanges = true, // Program turns the host's own watching off (see Provider), not the gateway's reloads
                    ReloadDelay = json.ReloadDelay,
                };
            }
        }
    }

    /// <summary>Reload the file when it changes (what <see cref="FileConfigurationSource.ReloadOnChange"/> asked of the source this one replaced).</summary>
    public bool WatchForChanges { get; init; }

    /// <summary>
    /// With <see cref="WatchForChanges"/>, how often the file's size and last write time are compared
    /// with what was last read, in case the watcher's notification was lost. Default 5 s: one
    /// <c>stat</c> of a file, a change applied within seconds either way.
    /// </summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromSeconds(5);

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
        private readonly ITimer? _check;
        private readonly Lock _reloading = new();
        private FileStamp _read; // the file as it was just before it was last read

        public Provider(LastGoodJsonConfigurationSource source)
            : base(source)
        {
            if (source.WatchForChanges && source.FileProvider is { } files && source.Path is { } path)
            {
                _check = TimeProvider.System.CreateTimer(static state => ((Provider)state!).ReloadIfChanged(), this, source.CheckInterval, source.CheckInterval);
                _watch = ChangeToken.OnChange(() => TryWatch(files, path), Reload);
            }
        }

        /// <summary>
        /// Why the file's changes are not watched, only checked every <see cref="CheckInterval"/>; null while they are.
        /// Linux allows 128 inotify instances per user by default, shared by every container that runs as the same
        /// user on a node: once they are taken, the runtime's own watcher threw from <c>CreateBuilder</c> and the
        /// gateway did not start at all (tried: "Unhandled exception. System.IO.IOException: The configured user
        /// limit (128) on the number of inotify instances has been reached"). <c>Program</c> now turns the host's
        /// watching off, and here a watcher that cannot be had leaves the periodic check, which reads a saved
        /// edit within <see cref="CheckInterval"/> anyway.
        /// </summary>
        public string? WatchUnavailable { get; private set; }

        /// <summary>How often the file is looked at besides the watcher (<see cref="LastGoodJsonConfigurationSource.CheckInterval"/>).</summary>
        public TimeSpan CheckInterval => ((LastGoodJsonConfigurationSource)Source).CheckInterval;

        private IChangeToken TryWatch(IFileProvider files, string path)
        {
            try
            {
                var token = files.Watch(path);
                WatchUnavailable = null;
                return token;
            }
            catch (IOException ex)
            {
                WatchUnavailable = ex.Message;
                return NullChangeToken.Singleton; // never fires: the periodic check carries on alone
            }
        }

        public override void Load()
        {
            lock (_reloading)
            {
                _read = Stamp(CurrentFile());
                base.Load();
            }
        }

        // The children of every section, indexed once per load: the base class scans every key for each section's.
        private ConfigurationChildIndex? _children;

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
        {
            var index = _children;
            if (index is null || !ReferenceEquals(index.Data, Data))
            {
                index = new ConfigurationChildIndex(Data);
                _children = index;
            }

            return index.ChildKeys(earlierKeys, parentPath);
        }

        public override void Set(string key, string? value)
        {
            base.Set(key, value);
            _children = null;
            _sets++;
        }

        private int _sets;

        /// <summary>
        /// Which contents the provider holds: another value once the file is read again (a read replaces <c>Data</c>
        /// whole) or a key is set. Equal values mean a walk between them saw one version of the file (<see cref="SectionCopy"/>).
        /// </summary>
        internal (object Data, int Sets) Version => (Data, Volatile.Read(ref _sets));

        /// <summary>The keys the file holds now (<see cref="SectionCopy"/>).</summary>
        internal ICollection<string> Keys => Data.Keys;

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
            ReadAndSignal();
        }

        private void ReadAndSignal()
        {
            lock (_reloading)
            {
                var file = CurrentFile();
                ReadAgain(file, Stamp(file));
            }

            OnReload();
        }

        /// <summary>
        /// Reads the file again whether or not it looks changed, and raises the reload event (SIGHUP,
        /// <see cref="ConfigReloadSignal"/>). False, and nothing read, for a file not watched for changes.
        /// </summary>
        public bool ReadNow()
        {
            if (_check is null)
            {
                return false;
            }

            ReadAndSignal();
            return true;
        }

        /// <summary>The file's full path, for log lines; null while an optional file does not exist.</summary>
        public string? ExistingFilePath => CurrentFile() is { Exists: true } file ? file.PhysicalPath ?? Source.Path : null;

        // The periodic check: a change nobody was told about is read now. Its stamp is taken
        // before reading, so a write that lands during the read is seen at the next check.
        private void ReloadIfChanged()
        {
            lock (_reloading)
            {
                var file = CurrentFile();
                var stamp = Stamp(file);
                if (stamp == _read)
                {
                    return;
                }

                ReadAgain(file, stamp);
            }

            OnReload();
        }

        // A symbolic link is followed to its final target, whose path is part of the stamp: a
        // Kubernetes ConfigMap volume is updated by pointing a link at a new directory, and the link
        // the gateway was given never changes itself.
        private IFileInfo? CurrentFile() => Source.FileProvider?.GetFileInfo(Source.Path ?? string.Empty);

        private static FileStamp Stamp(IFileInfo? file)
        {
            if (file is not { Exists: true })
            {
                return default;
            }

            if (file.PhysicalPath is { } path)
            {
                try
                {
                    var info = new FileInfo(path);
                    var target = info.LinkTarget is null ? info : info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
                    return new FileStamp(target.Exists, target.Exists ? target.Length : 0, target.Exists ? target.LastWriteTimeUtc : default, target.FullName);
                }
                catch (IOException)
                {
                    // Unreadable link: fall back to what the provider says.
                }
            }

            return new FileStamp(true, file.Length, file.LastModified, null);
        }

        /// <summary>
        /// How many times a read that finds the file broken is repeated while the file keeps changing around it
        /// (<see cref="ReadAgain"/>); past that, it is reported broken.
        /// </summary>
        internal const int MaxReadsWhileWritten = 5;

        // Reads the file into Data (or keeps the last good contents and says why in Broken), and
        // remembers it as it was just before (its stamp); the caller then raises the reload event,
        // outside the lock. A file written in place (cp, a shell's >, an editor that truncates, then
        // writes) is empty or cut short for a moment, and a read that lands in that moment (the periodic
        // check, a SIGHUP, a watcher's reload of an earlier write) finds it broken though the edit is
        // good: it was rejected, logged as an error and counted, and the rejected-reload alert fired for
        // an edit that was applied a moment later. So a broken read is looked at again after the watcher's
        // delay (ReloadDelay, as the writer is given before a watched change is read): if the file changed
        // meanwhile, its writer was still at work, and it is read again. A file that stays as it was is
        // broken, and says so. Broken is set only then: a reload of another file meanwhile (a SIGHUP reads
        // them all) looks at it, and must not see a verdict on a read that is to be repeated.
        private void ReadAgain(IFileInfo? file, FileStamp stamp)
        {
            for (var read = 1; ; read++)
            {
                _read = stamp;
                var broken = ReadInto(file);
                if (broken is null || read == MaxReadsWhileWritten)
                {
                    Broken = broken;
                    return;
                }

                Thread.Sleep(Source.ReloadDelay);
                file = CurrentFile();
                var now = Stamp(file);
                if (now == stamp)
                {
                    Broken = broken;
                    return;
                }

                stamp = now;
            }
        }

        // One read into Data; null if it was read (or, optional, is gone and took its keys), else what is wrong with it.
        private string? ReadInto(IFileInfo? file)
        {
            if (file is null || !file.Exists)
            {
                if (!Source.Optional)
                {
                    return "is missing (deleted or renamed).";
                }

                Data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
                return null;
            }

            try
            {
                using var stream = OpenRead(file);
                Load(stream); // sets Data only once the whole file has parsed
                return null;
            }
            catch (FormatException ex)
            {
                // JSON that does not parse (the runtime wraps the parser's error), or JSON the
                // configuration cannot take (a key twice).
                return ex.InnerException is System.Text.Json.JsonException json ? $"not valid JSON: {json.Message}" : $"not usable as configuration: {ex.Message}";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return $"cannot be read: {ex.Message}";
            }
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
                _check?.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    private readonly record struct FileStamp(bool Exists, long Length, DateTimeOffset LastModified, string? Target);
}
