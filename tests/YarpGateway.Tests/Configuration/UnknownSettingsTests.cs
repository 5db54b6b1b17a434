using System.Reflection;
using Microsoft.Extensions.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

public class UnknownSettingsTests
{
    private static List<string> Find(string json) => UnknownSettings.Find(ProxyConfigReaderTests.Json(json), GatewayServiceCollectionExtensions.SettingsSchema);

    [Fact]
    public void ATypoInAClusterOrAGatewaySection_IsNamed_WithTheNearestSetting()
    {
        var found = Find("""
            {
              "ReverseProxy": {
                "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/{**x}", "Methodz": [ "GET" ] } } },
                "Clusters": { "c": { "LoadBalancerPolicy": "WeightedRoundRobin",
                  "Destinations": { "d": { "Adress": "http://127.0.0.1:1/" } } } }
              },
              "Gateway": { "Admision": { "Global": { "MaxConcurrency": 5 } }, "Resilience": { "MaxRetrys": 1 } }
            }
            """);

        Assert.Equal(
            [
                "ReverseProxy:Clusters:c:Destinations:d:Adress (did you mean Address?)",
                "ReverseProxy:Clusters:c:LoadBalancerPolicy (did you mean LoadBalancingPolicy?)",
                "ReverseProxy:Routes:r:Match:Methodz (did you mean Methods?)",
                "Gateway:Admision (did you mean Admission?)",
                "Gateway:Resilience:MaxRetrys (did you mean MaxRetries?)",
            ],
            found);
    }

    [Fact]
    public void FreeFormPlaces_AcceptAnyKey_AndAFarOffNameGetsNoGuess() // ids, Metadata, Transforms, policy names, claim types
    {
        var found = Find("""
            {
              "ReverseProxy": {
                "Routes": { "any-id": { "ClusterId": "c", "Match": { "Path": "/{**x}", "Headers": [ { "Name": "h", "Values": [ "v" ], "Mode": "ExactHeader" } ] },
                  "Metadata": { "Anything": "1" }, "Transforms": [ { "RequestHeader": "x", "Set": "y" } ] } },
                "Clusters": { "c": { "HttpRequest": { "Version": "2" }, "HealthCheck": { "Passive": { "Enabled": "true" } },
                  "Destinations": { "d": { "Address": "http://127.0.0.1:1/", "Metadata": { "Weight": "3" } } }, "Completely": "x" } }
              },
              "Gateway": { "Authorization": { "Policies": { "p": { "RequireScopes": [ "a" ], "RequireClaims": { "tenant": [ "x" ] } } } } }
            }
            """);

        Assert.Equal(["ReverseProxy:Clusters:c:Completely"], found);
    }

    [Fact]
    public void EveryGatewayOptionsSection_IsKnown()
    {
        var sections = typeof(UnknownSettings).Assembly.GetTypes()
            .Where(t => t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field && ((string)field.GetValue(null)!).StartsWith("Gateway:", StringComparison.Ordinal))
            .ToDictionary(UnknownSettings.SectionNameOf);

        var known = GatewayServiceCollectionExtensions.SettingsSchema.GatewaySections;
        Assert.Equal(sections.Keys.Order(), known.Keys.Order());
        Assert.All(sections, s => Assert.Equal(s.Value, known[s.Key]));
    }

    [Theory]
    [InlineData("appsettings/appsettings.json")]
    [InlineData("appsettings/appsettings.Development.json")]
    [InlineData("deploy/kubernetes/appsettings.Production.json")]
    [InlineData("deploy/kubernetes/examples/headless-backend.gateway.json")]
    [InlineData("bench/storm-gateway.json")]
    [InlineData("bench/ws-gateway.json")]
    [InlineData("bench/ws-gateway-h2.json")]
    public void EveryShippedConfig_HasNoUnknownSetting(string relative)
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(ReadmeExampleTests.RepositoryFile(relative)).Build();

        Assert.Empty(UnknownSettings.Find(configuration, GatewayServiceCollectionExtensions.SettingsSchema));
    }
}
