using System.Security.Authentication;
using System.Text;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

public class ProxyConfigReaderTests
{
    internal static IConfigurationRoot Json(string json)
        => new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();

    [Fact]
    public void Read_FullYarpSchema_ReadsEveryPart()
    {
        var result = ProxyConfigReader.Read(Json("""
        { "ReverseProxy": {
          "Routes": { "r1": { "ClusterId": "c1", "Order": 3, "Timeout": "00:00:05", "MaxRequestBodySize": 1024,
                              "Match": { "Path": "/x/{**rest}", "Hosts": ["a.example"], "Methods": ["GET"],
                                         "Headers": [ { "Name": "h", "Values": ["v"], "Mode": "ExactHeader" } ] },
                              "Metadata": { "k": "v" },
                              "Transforms": [ { "PathRemovePrefix": "/x" }, { "RequestHeader": "A", "Set": "b" } ] } },
          "Clusters": { "c1": { "LoadBalancingPolicy": "WeightedRoundRobin",
                                "SessionAffinity": { "Enabled": true, "Policy": "Cookie", "AffinityKeyName": "k", "Cookie": { "SameSite": "Lax" } },
                                "HealthCheck": { "Active": { "Enabled": true, "Interval": "00:00:10", "Path": "/h" } },
                                "HttpClient": { "MaxConnectionsPerServer": 10, "SslProtocols": ["Tls12", "Tls13"] },
                                "HttpRequest": { "ActivityTimeout": "00:02:00", "Version": "2", "VersionPolicy": "RequestVersionOrLower" },
                                "Destinations": { "d1": { "Address": "http://127.0.0.1:1", "Metadata": { "Weight": "3" } } } } } } }
        """));

        Assert.Empty(result.Errors);
        var route = Assert.Single(result.Routes);
        Assert.Equal("r1", route.RouteId);
        Assert.Equal(3, route.Order);
        Assert.Equal(TimeSpan.FromSeconds(5), route.Timeout);
        Assert.Equal(["a.example"], route.Match.Hosts!);
        Assert.Equal("b", route.Transforms![1]["Set"]);

        var cluster = Assert.Single(result.Clusters);
        Assert.Equal("c1", cluster.ClusterId);
        Assert.Equal(SslProtocols.Tls12 | SslProtocols.Tls13, cluster.HttpClient!.SslProtocols);
        Assert.Equal(new Version(2, 0), cluster.HttpRequest!.Version);
        Assert.Equal(TimeSpan.FromMinutes(2), cluster.HttpRequest.ActivityTimeout);
        Assert.Equal("3", cluster.Destinations!["d1"].Metadata!["Weight"]);
        Assert.Equal(TimeSpan.FromSeconds(10), cluster.HealthCheck!.Active!.Interval);
    }

    [Fact]
    public void Read_BadValues_ListsEveryOneWithItsKey()
    {
        var result = ProxyConfigReader.Read(Json("""
        { "ReverseProxy": {
          "Routes": { "r1": { "ClusterId": "c1", "Order": "first", "Timeout": "soon", "Match": { "Path": "/" } } },
          "Clusters": { "c1": { "HttpClient": { "SslProtocols": ["Tls99"] }, "HttpRequest": { "Version": "banana" },
                                "Destinations": { "d1": { "Address": "http://127.0.0.1:1" } } } } } }
        """));

        var keys = result.Errors.Select(e => e.Key).ToList();
        Assert.Contains("ReverseProxy:Routes:r1:Order", keys);
        Assert.Contains("ReverseProxy:Routes:r1:Timeout", keys);
        Assert.Contains("ReverseProxy:Clusters:c1:HttpClient:SslProtocols:0", keys);
        Assert.Contains("ReverseProxy:Clusters:c1:HttpRequest:Version", keys);
        Assert.Equal(4, result.Errors.Count);
        Assert.Contains(result.Errors, e => e.Message == "'first' is not a whole number.");
        Assert.Contains(result.Errors, e => e.Message.StartsWith("'soon' is not a time span", StringComparison.Ordinal));
    }

    [Fact]
    public void Read_EmptySection_IsEmpty()
    {
        var result = ProxyConfigReader.Read(Json("{}"));
        Assert.Empty(result.Routes);
        Assert.Empty(result.Clusters);
        Assert.Empty(result.Errors);
    }
}
