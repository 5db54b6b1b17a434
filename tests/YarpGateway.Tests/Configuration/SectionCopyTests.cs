using Microsoft.Extensions.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A reload walks <c>ReverseProxy</c> once into a copy, and reads, snapshots and lists the keys of the copy: the copy must
/// answer as the configuration did, and say whether a file was read again while it was walked.
/// </summary>
public sealed class SectionCopyTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("sectioncopy-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private ConfigurationManager Configuration(string json)
    {
        File.WriteAllText(Path.Combine(_directory, "a.json"), json);
        var manager = new ConfigurationManager();
        manager.AddJsonFile(new Microsoft.Extensions.FileProviders.PhysicalFileProvider(_directory), "a.json", optional: false, reloadOnChange: false);
        manager.AddInMemoryCollection([new("ReverseProxy:Routes:r1:Order", "3"), new("reverseproxy:routes:R1:clusterid", "c2"), new("Other:Key", "x")]);
        LastGoodJsonConfigurationSource.KeepLastGoodOnReload(manager);
        IndexedConfigurationSource.IndexTheOthers(manager);
        return manager;
    }

    private const string Json = """
        { "ReverseProxy": { "Routes": { "r1": { "ClusterId": "c", "Match": { "Path": "/a", "Hosts": [ "x", "y" ] }, "Metadata": { "A": "1" } }, "R2": { "ClusterId": "c" } },
                            "Clusters": { "c": { "Destinations": { "d": { "Address": "http://a/" } } } }, "Empty": {} } }
        """;

    [Theory]
    [InlineData(false)] // from each provider's keys
    [InlineData(true)] // a provider that does not list its keys: by a walk
    public void TheCopy_AnswersAsTheConfigurationDid(bool walked)
    {
        var manager = Configuration(Json);
        if (walked)
        {
            manager.AddInMemoryCollection([new("ReverseProxy:Routes:r3:ClusterId", "c")]);
        }

        var copy = SectionCopy.Of(manager, ProxyConfigReader.SectionName);

        // The same keys and values; a key that two providers spell in different cases may come in either's case (the
        // configuration's own walk takes each level's from whichever provider sorts first), as it is one key.
        Assert.True(copy.Whole);
        Assert.Equal(Lines(ConfigChanges.Snapshot(manager, ProxyConfigReader.SectionName)), Lines(copy.Snapshot));
        Assert.Equal(LoweredKeys(ConfigChanges.Capture(manager, ProxyConfigReader.SectionName)), LoweredKeys(copy.Keys));
        Assert.Equal(
            Lowered(manager.GetSection(ProxyConfigReader.SectionName).AsEnumerable()),
            Lowered(copy.Configuration.GetSection(ProxyConfigReader.SectionName).AsEnumerable()));
        Assert.Null(copy.Configuration["Other:Key"]); // the section only
        var read = ProxyConfigReader.Read(copy.Configuration);
        var direct = ProxyConfigReader.Read(manager);
        Assert.Equal(direct.Routes, read.Routes);
        Assert.Equal(direct.Clusters, read.Clusters);
        Assert.Equal("3", read.Routes.Single(r => r.RouteId == "r1").Order?.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("c2", read.Routes.Single(r => r.RouteId == "r1").ClusterId); // a later provider's value, whatever the case of its key
        Assert.Equal(walked ? 3 : 2, read.Routes.Count);
    }

    private static List<string> Lines(string snapshot) => [.. snapshot.Split('\n').Select(line => line.ToLowerInvariant()).Order(StringComparer.Ordinal)];

    private static List<string> Lowered(IEnumerable<KeyValuePair<string, string?>> keys)
        => [.. keys.Where(kv => kv.Value is not null).Select(kv => $"{kv.Key.ToLowerInvariant()}={kv.Value}").Order(StringComparer.Ordinal)];

    private static List<string> LoweredKeys(IReadOnlyDictionary<string, string> keys) => Lowered(keys.Select(kv => new KeyValuePair<string, string?>(kv.Key, kv.Value)));

    [Fact]
    public void ACopyIsGivenAgain_UntilAProviderChanges()
    {
        var manager = Configuration(Json);
        var copies = new SectionCopies(manager);

        var first = copies.Of(ProxyConfigReader.SectionName);
        Assert.Same(first, copies.Of(ProxyConfigReader.SectionName));
        Assert.NotSame(first, copies.Of("Other"));

        File.WriteAllText(Path.Combine(_directory, "a.json"), Json.Replace("/a", "/b", StringComparison.Ordinal));
        ((IConfigurationRoot)manager).Reload();
        var second = copies.Of(ProxyConfigReader.SectionName);
        Assert.NotSame(first, second);
        Assert.False(first.IsCurrent(manager));
        Assert.Equal("/b", second.Configuration["ReverseProxy:Routes:r1:Match:Path"]);

        manager["ReverseProxy:Routes:r1:Order"] = "4"; // a key set: the files' providers count it, the others' reload
        Assert.Equal("4", copies.Of(ProxyConfigReader.SectionName).Configuration["ReverseProxy:Routes:r1:Order"]);
    }

    [Fact]
    public void AReloadDuringTheWalk_OrAConfigurationOfUnknownProviders_IsNotCalledWhole()
    {
        var manager = Configuration(Json);
        var file = ((IConfigurationRoot)manager).Providers.OfType<LastGoodJsonConfigurationSource.Provider>().Single();
        var before = file.Version;
        File.WriteAllText(Path.Combine(_directory, "a.json"), Json.Replace("/a", "/b", StringComparison.Ordinal));
        ((IConfigurationRoot)manager).Reload();
        Assert.NotEqual(before, file.Version); // a read replaces the file's keys: what Of compares before and after its walk
        Assert.True(SectionCopy.Of(manager, ProxyConfigReader.SectionName).Whole); // after the read: one version

        var reloading = new ReloadsWhenAsked();
        manager.Sources.Add(new Source(reloading));
        Assert.False(SectionCopy.Of(manager, ProxyConfigReader.SectionName).Whole); // a provider reloaded during the walk
        Assert.True(SectionCopy.Of(manager, ProxyConfigReader.SectionName).Whole);

        Assert.False(SectionCopy.Of(manager.GetSection(ProxyConfigReader.SectionName), "Routes").Whole); // not a root: cannot tell
    }

    private sealed class Source(IConfigurationProvider provider) : IConfigurationSource
    {
        public IConfigurationProvider Build(IConfigurationBuilder builder) => provider;
    }

    // Raises its reload event the first time it is asked for a section's children.
    private sealed class ReloadsWhenAsked : ConfigurationProvider
    {
        private int _asked;

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
        {
            if (Interlocked.Increment(ref _asked) == 1)
            {
                OnReload();
            }

            return base.GetChildKeys(earlierKeys, parentPath);
        }
    }
}
