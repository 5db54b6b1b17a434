namespace YarpGateway.Tests.Functional;

/// <summary>
/// The shipped appsettings turn off ASP.NET Core's per-request Activity (nothing exports traces from
/// the gateway), so the gateway must neither rewrite a client's trace context nor invent one: a
/// span id the gateway made up would be a parent no tracing backend ever receives.
/// </summary>
public class TraceContextTests
{
    [Fact]
    public async Task ShippedDefaults_PassTraceparentUnchanged_AndInventNone()
    {
        await using var backend = await TestBackend.StartAsync("a");
        using var gateway = GatewayProcess.StartOnLoopback(ProxyConfigJson.WriteTemp("yarpgateway-trace-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1"))));
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var http = new HttpClient { BaseAddress = proxy, Timeout = TimeSpan.FromSeconds(10) };

        const string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        using (var request = new HttpRequestMessage(HttpMethod.Get, "/traced"))
        {
            request.Headers.Add("traceparent", traceparent);
            using var response = await http.SendAsync(request);
            response.EnsureSuccessStatusCode();
        }

        using (var response = await http.GetAsync("/untraced"))
        {
            response.EnsureSuccessStatusCode();
        }

        Assert.Equal([traceparent, ""], backend.TraceParents.ToArray());
    }
}
