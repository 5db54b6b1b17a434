using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

/// <summary><c>--check</c>: the configuration checked as start-up checks it, and the process gone, binding nothing.</summary>
public class ConfigCheckTests
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AValidConfiguration_ExitsZero_SayingWhatItWouldServe_AndNamesATypo_WithoutBindingItsPorts()
    {
        // Both ports held: a start would exit 1 ("already in use"); a check binds neither.
        using var proxyPort = new TcpListener(IPAddress.Loopback, 0);
        using var managementPort = new TcpListener(IPAddress.Loopback, 0);
        proxyPort.Start();
        managementPort.Start();
        var path = ProxyConfigJson.WriteTemp("yarpgateway-check-", """
        { "ReverseProxy": {
            "Routes": { "all": { "ClusterId": "c", "Match": { "Path": "/{**rest}" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:9" } } } } },
          "Gateway": { "Admission": { "Global": { "MaxConcurency": 5 } } } }
        """);

        using var gateway = GatewayProcess.Start("Production",
            "--config", path, $"--Kestrel:Endpoints:Proxy:Url=http://{proxyPort.LocalEndpoint}", $"--Kestrel:Endpoints:Management:Url=http://{managementPort.LocalEndpoint}", "--check");
        var exitCode = await gateway.WaitForExitAsync(ExitBound);

        Assert.True(exitCode == 0, $"exit code {exitCode}; stderr: {gateway.StandardError}; stdout: {gateway.StandardOutput}");
        var lines = gateway.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Collection(lines,
            line =>
            {
                Assert.StartsWith("The configuration is valid: 1 route(s), 1 cluster(s), read from ", line, StringComparison.Ordinal);
                Assert.EndsWith($"appsettings.json, {path} in the Production environment.", line, StringComparison.Ordinal);
            },
            line => Assert.Equal("Warning: 1 setting(s) are read by neither the gateway nor YARP, so they change nothing: Gateway:Admission:Global:MaxConcurency (did you mean MaxConcurrency?).", line));
        Assert.Equal(string.Empty, gateway.StandardError);
    }

    [Fact]
    public async Task AnInvalidConfiguration_ExitsOne_ListingEveryErrorAStartWouldList()
    {
        // A live section's error, one of a section read at start only, a destination's and a log level's: all four, as a
        // start lists them. The log level is the one a check set for itself on the command line before, hiding the file's.
        var path = ProxyConfigJson.WriteTemp("yarpgateway-check-", """
        { "ReverseProxy": {
            "Routes": { "all": { "ClusterId": "c", "Match": { "Path": "/{**rest}" } } },
            "Clusters": { "c": { "Destinations": { "d": { "Address": "127.0.0.1:9" } } } } },
          "Gateway": { "Admission": { "Global": { "MaxConcurrency": -5 } }, "Http2": { "MaxStreamResets": -1 } },
          "Logging": { "LogLevel": { "Default": "Verbose" } } }
        """);

        using var gateway = GatewayProcess.Start("Production", "--check", "--config", path);

        Assert.Equal(1, await gateway.WaitForExitAsync(ExitBound));
        var stderr = gateway.StandardError;
        Assert.Contains("The gateway configuration is invalid (4 errors)", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}: Logging:LogLevel:Default: 'Verbose' is not a log level", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}: Gateway:Admission:Global:MaxConcurrency must not be negative", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}: Gateway:Http2:MaxStreamResets must not be negative; got -1.", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}: ReverseProxy:Clusters:c:Destinations:d:Address: '127.0.0.1:9' is not an absolute", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("The configuration is valid", gateway.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }
}
