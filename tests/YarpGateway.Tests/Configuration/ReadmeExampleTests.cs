using System.Text.RegularExpressions;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

/// <summary>The route examples in the documentation must stay valid config: the complete one in docs/configuration.md, the first one in README.md.</summary>
public partial class ReadmeExampleTests
{
    [GeneratedRegex("```json\\n(?<json>\\{\\n  \"ReverseProxy\".*?)\\n```", RegexOptions.Singleline)]
    private static partial Regex ReverseProxyExample();

    private static string Find(string relative) => Deploy.RepositoryFiles.PathOf(relative);

    [Fact]
    public async Task RouteExample_ReadsAndValidatesWithoutErrors()
    {
        var match = ReverseProxyExample().Match(await File.ReadAllTextAsync(Find("docs/configuration.md")));
        Assert.True(match.Success, "docs/configuration.md has no ReverseProxy JSON example");

        var json = match.Groups["json"].Value;
        Assert.Empty(await GatewayConfigValidatorTests.ValidateAsync(json));

        var read = ProxyConfigReader.Read(ProxyConfigReaderTests.Json(json));
        Assert.Equal(2, read.Routes.Count);
        Assert.Equal("0", read.Clusters.Single(c => c.ClusterId == "api").Destinations!["api-old"].Metadata!["Weight"]);
    }

    [Fact]
    public async Task TheReadmesOwnBackendExample_ReadsAndValidatesWithoutErrors()
    {
        var match = ReverseProxyExample().Match(await File.ReadAllTextAsync(Find("README.md")));
        Assert.True(match.Success, "README.md has no ReverseProxy JSON example");

        Assert.Empty(await GatewayConfigValidatorTests.ValidateAsync(match.Groups["json"].Value));
    }
}
