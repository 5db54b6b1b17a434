using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A JSON file whose reload finds it broken keeps its last good keys; a required file that goes keeps
/// them too; an optional file that goes takes them with it. Each reload still raises the change event.
/// </summary>
public sealed class LastGoodJsonConfigurationSourceTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly string _directory = Directory.CreateTempSubdirectory("lastgood-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private (IConfigurationRoot Root, Func<int> Reloads) Build(bool optional)
    {
        File.WriteAllText(Path.Combine(_directory, "a.json"), """{ "Key": "good" }""");
        var manager = new ConfigurationManager();
        manager.AddJsonFile(new Microsoft.Extensions.FileProviders.PhysicalFileProvider(_directory), "a.json", optional, reloadOnChange: true);
        LastGoodJsonConfigurationSource.KeepLastGoodOnReload(manager);
        Assert.Single(manager.Sources.OfType<LastGoodJsonConfigurationSource>());
        var reloads = 0;
        ChangeToken.OnChange(((IConfiguration)manager).GetReloadToken, () => Interlocked.Increment(ref reloads));
        return (manager, () => Volatile.Read(ref reloads));
    }

    private void Write(string text)
    {
        var temp = Path.Combine(_directory, "a.json.tmp");
        File.WriteAllText(temp, text);
        File.Move(temp, Path.Combine(_directory, "a.json"), overwrite: true);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ABrokenFile_KeepsItsLastGoodKeys_UntilItParsesAgain(bool optional)
    {
        var (root, reloads) = Build(optional);

        Write("""{ "Key": """);
        Assert.True(await Eventually.TrueAsync(() => reloads() >= 1, Bound), "no reload event for the broken file");
        Assert.Equal("good", root["Key"]);

        Write("""{ "Key": "better" }""");
        Assert.True(await Eventually.TrueAsync(() => root["Key"] == "better", Bound), $"the fixed file was not read: {root["Key"]}");
    }

    [Fact]
    public async Task ARequiredFileThatGoes_KeepsItsKeys_AnOptionalOneTakesThemWithIt()
    {
        var (required, requiredReloads) = Build(optional: false);
        File.Delete(Path.Combine(_directory, "a.json"));
        Assert.True(await Eventually.TrueAsync(() => requiredReloads() >= 1, Bound), "no reload event for the deleted file");
        Assert.Equal("good", required["Key"]);
        (required as IDisposable)?.Dispose();

        var (optional, _) = Build(optional: true);
        File.Delete(Path.Combine(_directory, "a.json"));
        Assert.True(await Eventually.TrueAsync(() => optional["Key"] is null, Bound), "the removed optional file's key is still there");
    }

    [Fact]
    public void AFileThatDoesNotParseAtStart_StillFailsStart()
    {
        File.WriteAllText(Path.Combine(_directory, "b.json"), """{ "Key": """);
        var manager = new ConfigurationManager();
        var error = Record.Exception(() => manager.Sources.Add(new LastGoodJsonConfigurationSource
        {
            FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(_directory),
            Path = "b.json",
            Optional = false,
        }));
        Assert.IsType<InvalidDataException>(error);
    }

    [Fact]
    public async Task AnEditWhoseNotificationIsLost_IsStillApplied_AtTheNextCheck()
    {
        // The file watcher's notification can be lost (tried on the Release build: after a few large
        // uploads, the first edit was not applied until a second edit came, in 2 of 5 tries). A
        // provider that never notifies stands for that here: only the periodic check can see the edit.
        File.WriteAllText(Path.Combine(_directory, "c.json"), """{ "Key": "first" }""");
        var manager = WatchedByCheckOnly("c.json");
        var reloads = 0;
        ChangeToken.OnChange(((IConfiguration)manager).GetReloadToken, () => Interlocked.Increment(ref reloads));
        Assert.Equal("first", manager["Key"]);

        File.WriteAllText(Path.Combine(_directory, "c.json"), """{ "Key": "second, and longer" }""");

        Assert.True(await Eventually.TrueAsync(() => manager["Key"] == "second, and longer", Bound), $"the edit was not applied: {manager["Key"]}");
        Assert.True(await Eventually.TrueAsync(() => Volatile.Read(ref reloads) >= 1, Bound), "no reload event for the edit");
        (manager as IDisposable).Dispose();
    }

    [Fact]
    public async Task AConfigMapStyleSwap_IsApplied_ThoughTheLinkItselfNeverChanges()
    {
        // A Kubernetes ConfigMap volume: a.json -> ..data/a.json, ..data -> ..v1; an update writes ..v2
        // and points ..data at it in one rename. The link the gateway was given never changes, and
        // the file watcher does not report it (tried on the Release build: not applied in 20 s).
        Directory.CreateDirectory(Path.Combine(_directory, "..v1"));
        File.WriteAllText(Path.Combine(_directory, "..v1", "a.json"), """{ "Key": "first" }""");
        File.CreateSymbolicLink(Path.Combine(_directory, "..data"), "..v1");
        File.CreateSymbolicLink(Path.Combine(_directory, "a.json"), Path.Combine("..data", "a.json"));
        var manager = WatchedByCheckOnly("a.json");
        Assert.Equal("first", manager["Key"]);

        Directory.CreateDirectory(Path.Combine(_directory, "..v2"));
        File.WriteAllText(Path.Combine(_directory, "..v2", "a.json"), """{ "Key": "first" }""".Replace("first", "second")); // same length
        File.Delete(Path.Combine(_directory, "..data")); // the link, not its directory (Kubernetes renames a new link over it)
        File.CreateSymbolicLink(Path.Combine(_directory, "..data"), "..v2");

        Assert.True(await Eventually.TrueAsync(() => manager["Key"] == "second", Bound), $"the swapped file was not read: {manager["Key"]}");
        (manager as IDisposable).Dispose();
    }

    [Fact]
    public void TheChildrenOfEverySection_AreWhatTheRuntimesJsonProviderSays()
    {
        // The provider answers "children of this section" from an index (a walk of 5,000 routes was
        // quadratic); every answer must be the runtime's own.
        File.WriteAllText(Path.Combine(_directory, "d.json"), """
        { "ReverseProxy": { "Routes": { "r1": { "ClusterId": "c", "Match": { "Path": "/a", "Hosts": [ "x", "y" ] } }, "R2": { "ClusterId": "c" } },
                            "Clusters": { "c": { "Destinations": { "d": { "Address": "http://a/" } } } } },
          "Gateway": { "Admission": { "Global": { "MaxConcurrency": 5 } } }, "Top": "v", "": { "Empty": 1 } }
        """);
        var files = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(_directory);
        var ours = new ConfigurationBuilder().Add(new LastGoodJsonConfigurationSource { FileProvider = files, Path = "d.json" }).Build();
        var runtimes = new ConfigurationBuilder().AddJsonFile(files, "d.json", optional: false, reloadOnChange: false).Build();

        Assert.Equal(runtimes.AsEnumerable().OrderBy(kv => kv.Key, StringComparer.Ordinal), ours.AsEnumerable().OrderBy(kv => kv.Key, StringComparer.Ordinal));
        var provider = Assert.Single(ours.Providers);
        var reference = Assert.Single(runtimes.Providers);
        foreach (var path in runtimes.AsEnumerable().Select(kv => kv.Key).Append(null).Append("reverseproxy:routes").Append("nothing:here"))
        {
            Assert.Equal(
                reference.GetChildKeys(["earlier"], path).Distinct(StringComparer.OrdinalIgnoreCase),
                provider.GetChildKeys(["earlier"], path).Distinct(StringComparer.OrdinalIgnoreCase));
        }
    }

    // The file in a configuration whose watcher never notifies: only the periodic check (every 100 ms) sees a change.
    [Fact]
    public void ReadNow_ReadsAnEditNobodyNoticed_AndRaisesTheReloadEvent()
    {
        // SIGHUP: no notification and no periodic check within the test (an hour apart), so only ReadNow can read it.
        File.WriteAllText(Path.Combine(_directory, "d.json"), """{ "Key": "first" }""");
        var manager = WatchedByCheckOnly("d.json", TimeSpan.FromHours(1));
        var reloads = 0;
        ChangeToken.OnChange(((IConfiguration)manager).GetReloadToken, () => Interlocked.Increment(ref reloads));
        File.WriteAllText(Path.Combine(_directory, "d.json"), """{ "Key": "second" }""");
        var provider = ((IConfigurationRoot)manager).Providers.OfType<LastGoodJsonConfigurationSource.Provider>().Single();

        Assert.True(provider.ReadNow());

        Assert.Equal("second", manager["Key"]);
        Assert.Equal(1, Volatile.Read(ref reloads));
        Assert.Equal(Path.Combine(_directory, "d.json"), provider.ExistingFilePath);
        (manager as IDisposable).Dispose();
    }

    private ConfigurationManager WatchedByCheckOnly(string path, TimeSpan? checkInterval = null)
    {
        var manager = new ConfigurationManager();
        manager.Sources.Add(new LastGoodJsonConfigurationSource
        {
            FileProvider = new DeafFileProvider(new Microsoft.Extensions.FileProviders.PhysicalFileProvider(_directory)),
            Path = path,
            WatchForChanges = true,
            ReloadDelay = 0,
            CheckInterval = checkInterval ?? TimeSpan.FromMilliseconds(100),
        });
        return manager;
    }

    /// <summary>A file provider whose change notifications never come.</summary>
    private sealed class DeafFileProvider(Microsoft.Extensions.FileProviders.IFileProvider inner) : Microsoft.Extensions.FileProviders.IFileProvider
    {
        public Microsoft.Extensions.FileProviders.IDirectoryContents GetDirectoryContents(string subpath) => inner.GetDirectoryContents(subpath);

        public Microsoft.Extensions.FileProviders.IFileInfo GetFileInfo(string subpath) => inner.GetFileInfo(subpath);

        public IChangeToken Watch(string filter) => Microsoft.Extensions.FileProviders.NullChangeToken.Singleton;
    }

    // A file written in place (cp, a shell's >): truncated, then written. A read that lands between the two finds it empty.
    // Before, that read rejected the edit (an error logged, the rejected-reload alert's counter raised) though the writer
    // finished a moment later; now the read sees the file changed around it and reads it again.
    [Theory]
    [InlineData("")]
    [InlineData("""{ "Key": "sec""")]
    public void AReadThatMeetsAWriterMidFile_ReadsTheFileAgain_InsteadOfCallingItBroken(string halfWritten)
    {
        var (manager, provider, files, path) = WithWriterDuringRead();
        File.WriteAllText(path, halfWritten); // the writer has truncated the file (and perhaps written some of it)
        files.FinishOnNextRead = """{ "Key": "second" }""";
        var brokenAtEachRead = new List<string?>();
        files.Reading = () => brokenAtEachRead.Add(provider.Broken);

        Assert.True(provider.ReadNow()); // the read sees the half-written file; the writer finishes as it reads

        Assert.Null(files.FinishOnNextRead);
        Assert.Null(provider.Broken);
        Assert.Equal("second", manager["Key"]);
        Assert.Equal([null, null], brokenAtEachRead); // read twice, and the first read's verdict never shown to anyone meanwhile
        (manager as IDisposable)?.Dispose();
    }

    [Fact]
    public void ABrokenFileThatStaysAsItIs_IsStillCalledBroken()
    {
        var (manager, provider, files, path) = WithWriterDuringRead();
        File.WriteAllText(path, """{ "Key": """);
        var readsBefore = files.Reads; // the first load's

        Assert.True(provider.ReadNow());

        Assert.StartsWith("not valid JSON", provider.Broken, StringComparison.Ordinal);
        Assert.Equal(1, files.Reads - readsBefore); // read once: it did not change around that read
        Assert.Equal("first", manager["Key"]);
        (manager as IDisposable)?.Dispose();
    }

    // w.json, at { "Key": "first" }, read through WrittenDuringReadFiles; read again only by ReadNow (SIGHUP).
    private (ConfigurationManager Manager, LastGoodJsonConfigurationSource.Provider Provider, WrittenDuringReadFiles Files, string Path) WithWriterDuringRead()
    {
        var path = Path.Combine(_directory, "w.json");
        File.WriteAllText(path, """{ "Key": "first" }""");
        var files = new WrittenDuringReadFiles(_directory);
        var manager = new ConfigurationManager();
        ((IConfigurationBuilder)manager).Add(new LastGoodJsonConfigurationSource
        {
            FileProvider = files,
            Path = "w.json",
            WatchForChanges = true,
            ReloadDelay = 0,
            CheckInterval = TimeSpan.FromHours(1),
        });
        var provider = Assert.Single(((IConfigurationRoot)manager).Providers.OfType<LastGoodJsonConfigurationSource.Provider>());
        return (manager, provider, files, path);
    }

    /// <summary>
    /// Files read through streams (no physical path, so the provider opens them here), where a writer can finish a file
    /// right after a read has taken what it had so far: the race between a reader and a writer that truncates, then writes.
    /// </summary>
    private sealed class WrittenDuringReadFiles(string root) : Microsoft.Extensions.FileProviders.IFileProvider
    {
        private readonly string _root = root;

        /// <summary>Written over the file by the next read, once it has read the file as it was.</summary>
        public string? FinishOnNextRead { get; set; }

        public int Reads { get; private set; }

        /// <summary>Called as each read begins.</summary>
        public Action? Reading { get; set; }

        public Microsoft.Extensions.FileProviders.IFileInfo GetFileInfo(string subpath) => new File(this, new FileInfo(Path.Combine(_root, subpath)));

        public Microsoft.Extensions.FileProviders.IDirectoryContents GetDirectoryContents(string subpath) => Microsoft.Extensions.FileProviders.NotFoundDirectoryContents.Singleton;

        public IChangeToken Watch(string filter) => Microsoft.Extensions.FileProviders.NullChangeToken.Singleton;

        private Stream Read(string path)
        {
            Reads++;
            Reading?.Invoke();
            var asItIs = System.IO.File.ReadAllBytes(path);
            if (FinishOnNextRead is { } rest)
            {
                FinishOnNextRead = null;
                System.IO.File.WriteAllText(path, rest);
            }

            return new MemoryStream(asItIs);
        }

        private sealed class File(WrittenDuringReadFiles files, FileInfo info) : Microsoft.Extensions.FileProviders.IFileInfo
        {
            public bool Exists => info.Exists;

            public long Length => info.Length;

            public string? PhysicalPath => null;

            public string Name => info.Name;

            public DateTimeOffset LastModified => info.LastWriteTimeUtc;

            public bool IsDirectory => false;

            public Stream CreateReadStream() => files.Read(info.FullName);
        }
    }

    [Fact]
    public async Task AFileThatCannotBeWatched_SaysWhy_AndIsStillCheckedAndReadOnSignal()
    {
        File.WriteAllText(Path.Combine(_directory, "a.json"), """{ "Key": "good" }""");
        var manager = new ConfigurationManager();
        using var files = new UnwatchableFiles(_directory);
        var source = new LastGoodJsonConfigurationSource
        {
            FileProvider = files,
            Path = "a.json",
            WatchForChanges = true,
            CheckInterval = TimeSpan.FromMilliseconds(200),
        };
        ((IConfigurationBuilder)manager).Add(source);
        var provider = Assert.Single(((IConfigurationRoot)manager).Providers.OfType<LastGoodJsonConfigurationSource.Provider>());

        Assert.Equal("no inotify instance left", provider.WatchUnavailable);
        Write("""{ "Key": "checked" }""");
        Assert.True(await Eventually.TrueAsync(() => manager["Key"] == "checked", Bound), "the periodic check did not read the edit");
        Assert.True(provider.ReadNow()); // SIGHUP still reads it
        (manager as IDisposable)?.Dispose();
    }

    // A directory whose changes cannot be watched, as when the user's inotify instances are all taken.
    private sealed class UnwatchableFiles(string root) : Microsoft.Extensions.FileProviders.IFileProvider, IDisposable
    {
        private readonly Microsoft.Extensions.FileProviders.PhysicalFileProvider _files = new(root);

        public void Dispose() => _files.Dispose();

        public Microsoft.Extensions.FileProviders.IFileInfo GetFileInfo(string subpath) => _files.GetFileInfo(subpath);

        public Microsoft.Extensions.FileProviders.IDirectoryContents GetDirectoryContents(string subpath) => _files.GetDirectoryContents(subpath);

        public IChangeToken Watch(string filter) => throw new IOException("no inotify instance left");
    }
}
