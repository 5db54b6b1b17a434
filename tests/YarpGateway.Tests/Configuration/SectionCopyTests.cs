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
        manager.AddInMemoryCollection([new("ReverseProxy:Routes:r1:Order", "3"), new("Other:Key", "x")]);
        LastGoodJsonConfigurationSource.KeepLastGoodOnReload(manager);
        IndexedConfigurationSource.IndexTheOthers(manager);
        return manager;
    }

    private const string Json = """
        { "ReverseProxy": { "Routes": { "r1": { "ClusterId": "c", "Match": { "Path": "/a", "Hosts": [ "x", "y" ] }, "Metadata": { "A": "1" } }, "R2": { "ClusterId": "c" } },
                            "Clusters": { "c": { "Destinations": { "d": { "Address": "http://a/" } } } }, "Empty": {} } }
        """;

    [Fact]
    public void TheCopy_AnswersAsTheConfigurationDid()
    {
        var manager = Configuration(Json);

        var copy = SectionCopy.Of(manager, ProxyConfigReader.SectionName);

        Assert.True(copy.Whole);
        Assert.Equal(ConfigChanges.Snapshot(manager, ProxyConfigReader.SectionName), copy.Snapshot);
        Assert.Equal(ConfigChanges.Capture(manager, ProxyConfigReader.SectionName).OrderBy(kv => kv.Key), copy.Keys.OrderBy(kv => kv.Key));
        Assert.Equal(
            manager.GetSection(ProxyConfigReader.SectionName).AsEnumerable().Where(kv => kv.Value is not null).OrderBy(kv => kv.Key, StringComparer.Ordinal),
            copy.Configuration.GetSection(ProxyConfigReader.SectionName).AsEnumerable().Where(kv => kv.Value is not null).OrderBy(kv => kv.Key, StringComparer.Ordinal));
        Assert.Null(copy.Configuration["Other:Key"]); // the section only
        var read = ProxyConfigReader.Read(copy.Configuration);
        var direct = ProxyConfigReader.Read(manager);
        Assert.Equal(direct.Routes, read.Routes);
        Assert.Equal(direct.Clusters, read.Clusters);
        Assert.Equal("3", read.Routes.Single(r => r.RouteId == "r1").Order?.ToString(System.Globalization.CultureInfo.InvariantCulture));
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
