using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

public class UnknownSettingsTests
{
    private static readonly HashSet<string> MetadataKeys = ["Weight", "MaxConcurrency", "OutlierEjection.Window"];

    /// <summary>Metadata keys docs/configuration.md documents (a sample of every feature's).</summary>
    private static readonly HashSet<string> DocumentedMetadataKeys = new(StringComparer.OrdinalIgnoreCase)
    {
        "Weight", "MaxConcurrency", "MaxQueue", "QueueTimeout", "AutoMinConcurrency", "AutoMaxConcurrency", "MaxRetries", "TryTimeout",
        "RetryStatusCodes", "RetryIdempotent", "ConnectTimeout", "PooledConnectionLifetime", "ExpectContinueAbove", "OutlierEjection.ConsecutiveFailures",
        "OutlierEjection.Window", "WebSocketSlowClientPolicy", "WebSocketOnly", "Discovery", "ReadinessRequiresDestination", "AllowTrace",
    };

    private static List<string> Find(string json) => UnknownSettings.Find(ProxyConfigReaderTests.Json(json), GatewayServiceCollectionExtensions.SettingsSchema, MetadataKeys);

    [Fact]
    public void AKestrelKeyNothingReads_IsNamed()
    {
        // Before: started without a word; Kestrel reads only its endpoints, their defaults and certificates, the gateway its limits.
        var found = Find("""
            { "Kestrel": { "AddServerHeader": true, "AllowSynchronousIO": "maybe", "Endpoint": { "Proxy": { "Url": "http://*:8080" } },
                "Endpoints": { "Proxy": { "Url": "http://*:8080" } }, "Limits": { "MaxConcurrentConnections": 5 }, "Certificates": {}, "EndpointDefaults": {} } }
            """);

        Assert.Equal(["Kestrel:AddServerHeader", "Kestrel:AllowSynchronousIO", "Kestrel:Endpoint (did you mean Endpoints?)"], found.Order(StringComparer.Ordinal));
    }

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
    public void ATypoInKestrelLimits_IsNamed_EndpointsAndCertificatesAreKestrelsOwn()
    {
        var found = Find("""
            {
              "Kestrel": {
                "Limits": { "MaxRequestBodySise": 1000, "KeepAliveTimeout": "00:01:00", "Http2": { "MaxStreamsPerConection": 10 } },
                "Endpoints": { "Proxy": { "Url": "http://0.0.0.0:8080", "Anything": "x" } }
              }
            }
            """);

        Assert.Equal(
            [
                "Kestrel:Limits:Http2:MaxStreamsPerConection (did you mean MaxStreamsPerConnection?)",
                "Kestrel:Limits:MaxRequestBodySise (did you mean MaxRequestBodySize?)",
            ],
            found);
    }

    [Fact]
    public void ATopLevelSectionOneOrTwoLettersOff_IsNamed_OtherTopLevelKeysAreNot()
    {
        var found = Find("""
            {
              "ReverseProxi": { "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/{**x}" } } } },
              "Gatway": { "Admission": { "Global": { "MaxConcurrency": 5 } } },
              "Loging": { "LogLevel": { "Default": "Warning" } },
              "AllowedHosts": "*",
              "ConnectionStrings": { "db": "x" },
              "MyCompany": { "Feature": "on" }
            }
            """);

        Assert.Equal(["Gatway (did you mean Gateway?)", "Loging (did you mean Logging?)", "ReverseProxi (did you mean ReverseProxy?)"], found.Order());
    }

    [Fact]
    public void EnvironmentVariables_AreNotTakenForTypos()
    {
        Environment.SetEnvironmentVariable("GATEWAI", "x"); // one letter off, but anything may sit in the environment
        try
        {
            var configuration = new ConfigurationBuilder().AddEnvironmentVariables().Build();
            Assert.DoesNotContain(UnknownSettings.Find(configuration, GatewayServiceCollectionExtensions.SettingsSchema, MetadataKeys), k => k.StartsWith("GATEWAI", StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable("GATEWAI", null);
        }
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
    public void InMetadata_OnlyANearMissOfAKeyAFeatureReads_IsNamed()
    {
        var found = Find("""
            {
              "ReverseProxy": {
                "Routes": { "r": { "ClusterId": "c", "Match": { "Path": "/{**x}" }, "Metadata": { "MaxConcurency": "10", "team": "payments" } } },
                "Clusters": { "c": { "Metadata": { "OutlierEjection.Windw": "00:00:05", "OutlierEjection.Window": "00:00:05" },
                  "Destinations": { "d": { "Address": "http://127.0.0.1:1/", "Metadata": { "Wieght": "3", "zone": "eu-1" } } } } }
              }
            }
            """);

        Assert.Equal(
            [
                "ReverseProxy:Clusters:c:Destinations:d:Metadata:Wieght (did you mean Weight?)",
                "ReverseProxy:Clusters:c:Metadata:OutlierEjection.Windw (did you mean OutlierEjection.Window?)",
                "ReverseProxy:Routes:r:Metadata:MaxConcurency (did you mean MaxConcurrency?)",
            ],
            found);
    }

    [Fact]
    public async Task EveryFeaturesMetadataKey_IsGivenByItsRule()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        var keys = gateway.Services.GetServices<IProxyConfigRule>().SelectMany(rule => rule.MetadataKeys).ToHashSet(StringComparer.OrdinalIgnoreCase);

        Assert.Superset(DocumentedMetadataKeys, keys);
    }

    [Fact]
    public void EveryGatewayOptionsSection_IsKnown()
    {
        var sections = typeof(UnknownSettings).Assembly.GetTypes()
            .Where(t => t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field && ((string)field.GetValue(null)!).StartsWith("Gateway:", StringComparison.Ordinal))
            .ToDictionary(t => (string)t.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)!.GetValue(null)!);

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
        var configuration = new ConfigurationBuilder().AddJsonFile(Deploy.RepositoryFiles.PathOf(relative)).Build();

        Assert.Empty(UnknownSettings.Find(configuration, GatewayServiceCollectionExtensions.SettingsSchema, DocumentedMetadataKeys));
    }
}
