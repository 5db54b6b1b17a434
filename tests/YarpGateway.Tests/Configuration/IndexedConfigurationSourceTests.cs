using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.Primitives;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// The providers other than the files' answer "the children of this section" from an index: the same answers as the
/// provider they wrap, which is asked once per section per load instead of once per section per walk (the environment's
/// provider scanned every variable for every section of every walk: 1,000 variables took a 5,000-route reload from 2.0 s
/// of CPU to 3.2 s).
/// </summary>
public sealed class IndexedConfigurationSourceTests
{
    private static readonly Dictionary<string, string?> Keys = new()
    {
        ["Top"] = "v",
        ["ReverseProxy:Routes:r1:ClusterId"] = "c",
        ["ReverseProxy:Routes:r1:Match:Hosts:0"] = "x",
        ["reverseproxy:routes:R2:ClusterId"] = "c",
        ["Gateway:Admission:Global:MaxConcurrency"] = "5",
        ["KUBERNETES_SERVICE_HOST"] = "10.0.0.1",
        [""] = "empty",
    };

    [Fact]
    public void EveryAnswer_IsWhatTheWrappedProviderSays()
    {
        var plain = new ConfigurationBuilder().AddInMemoryCollection(Keys).Build();
        var indexed = new ConfigurationBuilder().Add(new IndexedConfigurationSource(new MemoryConfigurationSource { InitialData = Keys })).Build();

        Assert.Equal(plain.AsEnumerable().OrderBy(kv => kv.Key, StringComparer.Ordinal), indexed.AsEnumerable().OrderBy(kv => kv.Key, StringComparer.Ordinal));
        var reference = Assert.Single(plain.Providers);
        var provider = Assert.Single(indexed.Providers);
        foreach (var path in plain.AsEnumerable().Select(kv => kv.Key).Append(null).Append("REVERSEPROXY:ROUTES").Append("nothing:here"))
        {
            Assert.Equal(
                reference.GetChildKeys(["earlier"], path).Distinct(StringComparer.OrdinalIgnoreCase),
                provider.GetChildKeys(["earlier"], path).Distinct(StringComparer.OrdinalIgnoreCase));
        }

        Assert.IsType<MemoryConfigurationProvider>(IndexedConfigurationSource.Unwrapped(provider));
        Assert.Same(reference, IndexedConfigurationSource.Unwrapped(reference));
    }

    [Fact]
    public void TheWrappedProvider_IsAskedOncePerSectionPerLoad_NotPerWalk()
    {
        var counting = new CountingSource(Keys);
        var indexed = new ConfigurationBuilder().Add(new IndexedConfigurationSource(counting)).Build();
        _ = indexed.AsEnumerable().ToList();
        var afterFirstWalk = counting.Questions;

        for (var walk = 0; walk < 5; walk++)
        {
            _ = indexed.AsEnumerable().ToList();
        }

        Assert.InRange(afterFirstWalk, 1, 20);
        Assert.Equal(afterFirstWalk, counting.Questions);
    }

    [Fact]
    public void ASet_ALoad_OrAReloadOfTheWrappedProvider_IsSeenAtTheNextQuestion()
    {
        var counting = new CountingSource(Keys);
        var indexed = new ConfigurationBuilder().Add(new IndexedConfigurationSource(counting)).Build();
        Assert.DoesNotContain("Added", indexed.GetChildren().Select(c => c.Key));

        indexed["Added:Key"] = "1";
        Assert.Contains("Added", indexed.GetChildren().Select(c => c.Key));

        counting.Provider.Replace(new Dictionary<string, string?> { ["Reloaded:Key"] = "1" }); // its data replaced, its reload token fired
        Assert.Equal(["Reloaded"], indexed.GetChildren().Select(c => c.Key));

        counting.Provider.Next = new Dictionary<string, string?> { ["Loaded:Key"] = "1" };
        indexed.Reload();
        Assert.Equal(["Loaded"], indexed.GetChildren().Select(c => c.Key));
    }

    [Fact]
    public void TheGatewaysConfiguration_WrapsEveryProviderButTheFiles_AndStillNamesWhereAKeyCameFrom()
    {
        var manager = new ConfigurationManager();
        manager.AddInMemoryCollection(Keys);
        manager.AddEnvironmentVariables();
        manager.AddCommandLine(["--Gateway:Telemetry:RequestId=false"]);
        IndexedConfigurationSource.IndexTheOthers(manager);
        IndexedConfigurationSource.IndexTheOthers(manager); // once is enough: not wrapped twice

        Assert.All(manager.Sources, source => Assert.IsType<IndexedConfigurationSource>(source));
        Assert.All(((IConfigurationRoot)manager).Providers, provider => Assert.IsNotType<IndexedConfigurationSource.Provider>(IndexedConfigurationSource.Unwrapped(provider)));
        Assert.Equal("false", manager["Gateway:Telemetry:RequestId"]);
        Assert.Equal("command line", ConfigSourceLocator.FindFile(manager, "Gateway:Telemetry:RequestId"));
    }

    private sealed class CountingSource(Dictionary<string, string?> keys) : IConfigurationSource
    {
        public CountingProvider Provider { get; } = new(keys);

        public int Questions => Provider.Questions;

        public IConfigurationProvider Build(IConfigurationBuilder builder) => Provider;
    }

    private sealed class CountingProvider(Dictionary<string, string?> keys) : ConfigurationProvider
    {
        public int Questions;

        public Dictionary<string, string?>? Next { get; set; }

        public override void Load() => Data = new Dictionary<string, string?>(Next ?? keys, StringComparer.OrdinalIgnoreCase);

        public void Replace(Dictionary<string, string?> data)
        {
            Data = new Dictionary<string, string?>(data, StringComparer.OrdinalIgnoreCase);
            OnReload();
        }

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
        {
            Interlocked.Increment(ref Questions);
            return base.GetChildKeys(earlierKeys, parentPath);
        }
    }
}
