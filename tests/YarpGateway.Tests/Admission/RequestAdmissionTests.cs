using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;
using YarpGateway.Admission;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Admission;

public class RequestAdmissionTests
{
    [Fact]
    public async Task ARouteAndClusterWithoutLimits_CostNothingPerRequest() // it runs for every proxied request
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        var admission = gateway.Services.GetRequiredService<RequestAdmission>();
        var context = new DefaultHttpContext();
        context.Features.Set<IReverseProxyFeature>(new ReverseProxyFeature
        {
            Route = new RouteModel(new RouteConfig { RouteId = "r", ClusterId = "c" }, null, HttpTransformer.Empty),
            AllDestinations = [],
            AvailableDestinations = [],
        });
        RequestDelegate next = _ => Task.CompletedTask;
        await admission.AdmitRouteAndClusterAsync(context, next); // the first looks the route's limits up

        // Seen once in CI: 5,912 bytes in 100 calls, a look-up's worth rather than a request's, most likely a configuration
        // applied meanwhile, which forgets the routes it does not have (this test's among them), so that the next call looks
        // its limits up again. Any of three rounds without that shows what a request costs; one that allocates every time
        // fails all three.
        long allocated = -1;
        for (var round = 0; round < 3 && allocated != 0; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 100; i++)
            {
                var admitted = admission.AdmitRouteAndClusterAsync(context, next);
                Assert.True(admitted.IsCompletedSuccessfully);
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(0, allocated); // the two-limit arm's closure cost 40 bytes on every request
    }
}
