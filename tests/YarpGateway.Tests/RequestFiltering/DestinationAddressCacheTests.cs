using System.Text.Json.Nodes;
using Yarp.ReverseProxy.Forwarder;
using YarpGateway.RequestFiltering;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.RequestFiltering;

public class DestinationAddressCacheTests
{
    public static TheoryData<string, string, string> Addresses => new()
    {
        { "http://10.0.0.1:8080/", "/", "" },
        { "http://10.0.0.1:8080/", "/api/orders", "?page=2&sort=asc" },
        { "http://10.0.0.1:8080", "/api/orders", "" },
        { "http://10.0.0.1:8080/base/", "/api", "?q=a%20b" },
        { "https://backend.example:8443/", "/caf\u00e9/a b", "" }, // a decoded path YARP escapes again
        { "http://[::1]:5000/", "/x", "?" },
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public void EveryAddress_IsYarpsOwn_AndFromTheThirdRequestOnTheSameObject(string prefix, string path, string query)
    {
        var cache = new DestinationAddressCache();
        var expected = RequestUtilities.MakeDestinationAddress(prefix, new PathString(path), new QueryString(query));

        var first = cache.Get(prefix, new PathString(path), new QueryString(query));
        var second = cache.Get(prefix, new PathString(path), new QueryString(query)); // kept on its second miss
        var third = cache.Get(prefix, new PathString(path), new QueryString(query));
        var fourth = cache.Get(prefix, new PathString(path), new QueryString(query));

        foreach (var address in new[] { first, second, third, fourth })
        {
            Assert.Equal(expected.OriginalString, address.OriginalString);
            Assert.Equal(expected.PathAndQuery, address.PathAndQuery);
            Assert.Equal(expected.IdnHost, address.IdnHost);
        }

        Assert.NotSame(first, second);
        Assert.Same(second, third);
        Assert.Same(third, fourth);
    }

    [Fact]
    public void ManyDifferentAddresses_EachGetsItsOwn_WhateverSharesASlot()
    {
        // 5,000 keys in 1,024 slots, each asked for three times over, interleaved: every answer is its own key's.
        var cache = new DestinationAddressCache();
        var keys = Enumerable.Range(0, 5000).Select(i => ($"http://10.0.{i % 7}.1:80/", $"/items/{i}", i % 3 == 0 ? $"?v={i}" : "")).ToArray();
        for (var round = 0; round < 3; round++)
        {
            foreach (var (prefix, path, query) in keys)
            {
                var address = cache.Get(prefix, new PathString(path), new QueryString(query));
                Assert.Equal(RequestUtilities.MakeDestinationAddress(prefix, new PathString(path), new QueryString(query)).OriginalString, address.OriginalString);
            }
        }
    }

    [Fact]
    public void AHit_AllocatesNothing_AndAPathThatNeverRepeats_NoMoreThanYarpItself()
    {
        var cache = new DestinationAddressCache();
        var path = new PathString("/api/orders");
        var query = new QueryString("?page=2");
        for (var i = 0; i < 3; i++)
        {
            cache.Get("http://10.0.0.1:8080/", path, query);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            cache.Get("http://10.0.0.1:8080/", path, query);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        // Unique paths: what YARP allocates for each, and not one entry more (an address is kept on its second miss).
        var paths = Enumerable.Range(0, 200).Select(i => new PathString($"/items/{i}")).ToArray();
        before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var unique in paths)
        {
            RequestUtilities.MakeDestinationAddress("http://10.0.0.1:8080/", unique, query);
        }

        var yarps = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var unique in paths)
        {
            cache.Get("http://10.0.0.1:8080/", unique, query);
        }

        Assert.Equal(yarps, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void APathAndQueryOverTheLimit_IsNeverKept()
    {
        var cache = new DestinationAddressCache();
        var path = new PathString("/" + new string('a', DestinationAddressCache.MaxKeyLength));
        var addresses = Enumerable.Range(0, 4).Select(_ => cache.Get("http://10.0.0.1/", path, QueryString.Empty)).ToArray();

        Assert.Equal(4, addresses.Distinct(ReferenceEqualityComparer.Instance).Count());
    }

    /// <summary>
    /// Through the gateway, the same requests again and again (so that the addresses are the table's): each reaches its
    /// backend with its own path and query, on a route whose query a transform changes (which the table leaves to YARP),
    /// and on one whose path a transform changes.
    /// </summary>
    [Fact]
    public async Task RepeatedRequests_ReachTheBackendWithTheirOwnPathAndQuery_WithAndWithoutTransforms()
    {
        await using var backend = await TestBackend.StartAsync("a");
        var config = new JsonObject
        {
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["query"] = new JsonObject
                    {
                        ["ClusterId"] = "c1",
                        ["Match"] = new JsonObject { ["Path"] = "/q/{**rest}" },
                        ["Transforms"] = new JsonArray(new JsonObject { ["QueryValueParameter"] = "added", ["Append"] = "yes" }),
                    },
                    ["prefix"] = new JsonObject
                    {
                        ["ClusterId"] = "c1",
                        ["Match"] = new JsonObject { ["Path"] = "/p/{**rest}" },
                        ["Transforms"] = new JsonArray(new JsonObject { ["PathRemovePrefix"] = "/p" }),
                    },
                    ["all"] = new JsonObject { ["ClusterId"] = "c1", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" }, ["Order"] = 100 },
                },
                ["Clusters"] = new JsonObject { ["c1"] = new JsonObject { ["Destinations"] = new JsonObject { ["a"] = new JsonObject { ["Address"] = backend.Address.ToString() } } } },
            },
        };
        await using var gateway = await GatewayUnderTest.StartAsync(config);
        using var client = gateway.CreateProxyClient();
        string[] sent = ["/x?a=1", "/x?a=2", "/y", "/q/x?a=1", "/q/x", "/p/x?a=1", "/p/y"];
        string[] received = ["/x?a=1", "/x?a=2", "/y", "/q/x?a=1&added=yes", "/q/x?added=yes", "/x?a=1", "/y"];

        for (var round = 0; round < 4; round++)
        {
            foreach (var target in sent)
            {
                using var response = await client.GetAsync(target);
                Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            }
        }

        Assert.Equal(Enumerable.Range(0, 4).SelectMany(_ => received), backend.RawTargets);
    }
}
