using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.LoadBalancing;
using YarpGateway.Configuration;
using YarpGateway.LoadBalancing;

namespace YarpGateway.Tests.Configuration;

/// <summary>The complete route example in README.md must stay valid config.</summary>
public partial class ReadmeExampleTests
{
    [GeneratedRegex("```json\\n(?<json>\\{\\n  \"ReverseProxy\".*?)\\n```", RegexOptions.Singleline)]
    private static partial Regex ReverseProxyExample();

    private static string FindReadme()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "README.md");
            if (File.Exists(candidate) && File.Exists(Path.Combine(directory.FullName, "YarpGateway.sln")))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("README.md next to YarpGateway.sln");
    }

    [Fact]
    public async Task RouteExample_ReadsAndValidatesWithoutErrors()
    {
        var match = ReverseProxyExample().Match(await File.ReadAllTextAsync(FindReadme()));
        Assert.True(match.Success, "README.md has no ReverseProxy JSON example");

        var services = new ServiceCollection().AddLogging();
        services.AddReverseProxy();
        services.AddWeightedLoadBalancing();
        await using var provider = services.BuildServiceProvider();
        var validator = new GatewayConfigValidator(provider.GetRequiredService<IConfigValidator>(), provider.GetServices<ILoadBalancingPolicy>());

        var read = ProxyConfigReader.Read(ProxyConfigReaderTests.Json(match.Groups["json"].Value));
        var errors = await validator.ValidateAsync(read, CancellationToken.None);

        Assert.Empty(errors);
        Assert.Equal(2, read.Routes.Count);
        Assert.Equal("0", read.Clusters.Single(c => c.ClusterId == "api").Destinations!["api-old"].Metadata!["Weight"]);
    }
}
