using Microsoft.Extensions.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

public class ConfigChangesTests
{
    private static readonly Dictionary<string, string> Before = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Routes:all:ClusterId"] = "api",
        ["Routes:all:Match:Path"] = "/{**rest}",
        ["Clusters:api:LoadBalancingPolicy"] = "WeightedRoundRobin",
        ["Clusters:api:Destinations:a:Address"] = "http://10.0.0.1/",
        ["Clusters:api:Destinations:a:Metadata:Weight"] = "1",
        ["Clusters:api:Destinations:b:Address"] = "http://10.0.0.2/",
    };

    private static string Describe(IReadOnlyDictionary<string, string> before, IReadOnlyDictionary<string, string> after)
        => ConfigChanges.Describe(before, after, ConfigChanges.ValuesExceptSecrets);

    private static Dictionary<string, string> Edit(Action<Dictionary<string, string>> edit)
    {
        var after = new Dictionary<string, string>(Before, StringComparer.OrdinalIgnoreCase);
        edit(after);
        return after;
    }

    [Fact]
    public void AChangedValue_IsNamedByItsKey_WithBothValues()
        => Assert.Equal("Clusters:api:Destinations:a:Metadata:Weight: '1' -> '3'",
            Describe(Before, Edit(a => a["Clusters:api:Destinations:a:Metadata:Weight"] = "3")));

    [Fact]
    public void AWholeDestinationAddedOrRemoved_IsOneItem()
    {
        var after = Edit(a =>
        {
            a.Remove("Clusters:api:Destinations:b:Address");
            a["Clusters:api:Destinations:c:Address"] = "http://10.0.0.3/";
            a["Clusters:api:Destinations:c:Metadata:Weight"] = "2";
        });

        Assert.Equal("Clusters:api:Destinations:b: removed; Clusters:api:Destinations:c: added", Describe(Before, after));
    }

    [Fact]
    public void ANewKeyUnderWhatExisted_ShowsItsValue_AndAWholeNewLevelIsNamedOnce()
    {
        var after = Edit(a =>
        {
            a["Routes:all:Order"] = "5";
            a["Clusters:api:Destinations:b:Metadata:Weight"] = "0";
        });

        Assert.Equal("Clusters:api:Destinations:b:Metadata: added; Routes:all:Order: added ('5')", Describe(Before, after));
    }

    // Gateway:ForwardedHeaders' first trusted networks were logged as "KnownNetworks: added.", which network not said.
    [Fact]
    public void AListAddedOrRemovedWhole_ShowsItsValues_InIndexOrder()
    {
        var before = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["ForwardLimit"] = "1" };
        var after = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
        {
            ["ForwardLimit"] = "1",
            ["KnownNetworks:10"] = "192.0.2.0/24",
            ["KnownNetworks:2"] = "198.51.100.0/24",
            ["KnownNetworks:0"] = "10.0.0.0/8",
        };

        Assert.Equal("KnownNetworks: added ('10.0.0.0/8', '198.51.100.0/24', '192.0.2.0/24')", Describe(before, after));
        Assert.Equal("KnownNetworks: removed ('10.0.0.0/8', '198.51.100.0/24', '192.0.2.0/24')", Describe(after, before));
    }

    [Fact]
    public void ALongListOrALevelWithMoreThanAList_IsNamedOnly()
    {
        var before = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var longList = Enumerable.Range(0, ConfigChanges.MaxListed + 1).ToDictionary(i => $"KnownProxies:{i}", i => $"10.0.0.{i}", StringComparer.OrdinalIgnoreCase);
        var mixed = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Policies:0"] = "a", ["Policies:web:Origins:0"] = "https://a.example" };
        var route = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Routes:r:ClusterId"] = "c" };
        var withTransform = new Dictionary<string, string>(route, StringComparer.OrdinalIgnoreCase) { ["Routes:r:Transforms:0"] = "x" };

        Assert.Equal("KnownProxies: added", Describe(before, longList));
        Assert.Equal("Policies: added", Describe(before, mixed));
        Assert.Equal("Routes:r:Transforms: added", Describe(route, withTransform)); // a transform's values are never shown
    }

    [Fact]
    public void TransformValues_AreNotShown()
    {
        var before = Edit(a => a["Routes:all:Transforms:0:RequestHeader"] = "Authorization");
        before["Routes:all:Transforms:0:Set"] = "Bearer old-secret";
        var after = new Dictionary<string, string>(before, StringComparer.OrdinalIgnoreCase) { ["Routes:all:Transforms:0:Set"] = "Bearer new-secret" };

        var text = Describe(before, after);

        Assert.Equal("Routes:all:Transforms:0:Set: changed", text);
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Clusters:api:Metadata:ApiKey")]
    [InlineData("Clusters:api:Metadata:client_secret")]
    [InlineData("Otlp:Password")]
    [InlineData("Routes:all:Metadata:UpstreamToken")]
    [InlineData("Discovery:Credentials")]
    public void AKeyWhoseNameSaysSecret_ShowsNoValue(string key)
    {
        var before = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { [key] = "old-s3cret" };
        var after = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { [key] = "new-s3cret" };

        Assert.Equal($"{key}: changed", ConfigChanges.Describe(before, after, ConfigChanges.ValuesExceptSecrets));
    }

    [Fact]
    public void ARateLimitsTokensPerPeriod_ShowsItsValue()
    {
        var before = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Policies:p:TokensPerPeriod"] = "100" };
        var after = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["Policies:p:TokensPerPeriod"] = "1000" };

        Assert.Equal("Policies:p:TokensPerPeriod: '100' -> '1000'", ConfigChanges.Describe(before, after, ConfigChanges.ValuesExceptSecrets));
    }

    [Fact]
    public void ManyChanges_ShowTheFirstTen_AndCountTheRest()
    {
        var after = Edit(a =>
        {
            for (var i = 0; i < 15; i++)
            {
                a[$"Routes:r{i:00}:ClusterId"] = "api";
            }
        });

        var text = Describe(Before, after);

        Assert.Equal(ConfigChanges.MaxItems, text.Split("; ").Count(item => item.EndsWith(": added", StringComparison.Ordinal)));
        Assert.EndsWith("; and 5 more", text, StringComparison.Ordinal);
        Assert.StartsWith("Routes:r00: added; Routes:r01: added", text, StringComparison.Ordinal);
    }

    [Fact]
    public void NothingChanged_OrOnlyAKeysCase_IsEmpty()
    {
        Assert.Equal("", Describe(Before, Edit(_ => { })));
        var recased = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in Before)
        {
            recased[key.ToUpperInvariant()] = value;
        }

        Assert.Equal("", Describe(Before, recased));
    }

    [Fact]
    public void ALongValue_IsCut()
    {
        var text = Describe(Before, Edit(a => a["Routes:all:Match:Path"] = "/" + new string('x', 200)));

        Assert.EndsWith("...'", text, StringComparison.Ordinal);
        Assert.True(text.Length < 250, text);
    }

    [Fact]
    public void WithNoValues_OnlyTheKeysAreNamed()
    {
        var text = ConfigChanges.Describe(Before, Edit(a =>
        {
            a["Clusters:api:Destinations:a:Address"] = "http://10.0.0.9/";
            a["Routes:all:Order"] = "5";
        }), ConfigChanges.NoValues);

        Assert.Equal("Clusters:api:Destinations:a:Address: changed; Routes:all:Order: added", text);
    }

    [Fact]
    public void Capture_ReadsTheSectionsKeys_RelativeToIt()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ReverseProxy:Routes:all:ClusterId"] = "api",
            ["Gateway:Shutdown:DrainDelay"] = "00:00:05",
        }).Build();

        var keys = ConfigChanges.Capture(configuration, "ReverseProxy");

        Assert.Equal("api", Assert.Single(keys, kv => kv.Key == "Routes:all:ClusterId").Value);
        Assert.Single(keys);
    }
}
