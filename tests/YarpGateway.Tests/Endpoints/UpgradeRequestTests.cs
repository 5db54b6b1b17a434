using System.Collections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Endpoints;

public class UpgradeRequestTests
{
    [Theory]
    [InlineData(null)] // HTTP/1.1 keep-alive, and every HTTP/2 request
    [InlineData("close")]
    [InlineData("keep-alive")]
    public void ARequestThatCannotBeAnUpgrade_IsAnsweredWithoutReadingTheUpgradeFeatures(string? connection)
    {
        // The upgrade feature here claims an upgrade that the request's head rules out (no "upgrade" in a Connection
        // header): only a check that never reads it answers false.
        var (context, read) = Request("GET", connection, new UpgradeFeature(true), extendedConnect: false);

        Assert.False(UpgradeRequest.Is(context));
        Assert.DoesNotContain(typeof(IHttpUpgradeFeature), read);
        Assert.DoesNotContain(typeof(IHttpExtendedConnectFeature), read);
        Assert.DoesNotContain(typeof(UpgradeRequest), read);
    }

    [Theory]
    [InlineData("GET", "Upgrade", "websocket", true, false, true)] // an HTTP/1.1 WebSocket handshake
    [InlineData("GET", "keep-alive, Upgrade", "WebSocket", true, false, true)] // Firefox's handshake
    [InlineData("GET", "Upgrade", "SPDY/3.1", true, false, true)] // kubectl's exec, which YARP upgrades too
    [InlineData("GET", "Upgrade", "websocket", false, false, false)] // "upgrade" named, but not an upgrade Kestrel takes (an HTTP/1.0 request, say)
    [InlineData("CONNECT", null, null, false, true, true)] // an HTTP/2 extended CONNECT (RFC 8441)
    [InlineData("CONNECT", null, null, false, false, false)] // a plain CONNECT
    public void TheFeaturesDecide_WhenTheHeadAllowsAnUpgrade(string method, string? connection, string? upgrade, bool upgradable, bool extendedConnect, bool expected)
    {
        var (context, read) = Request(method, connection, new UpgradeFeature(upgradable), extendedConnect);
        if (upgrade is not null)
        {
            context.Request.Headers.Upgrade = upgrade;
        }

        Assert.Equal(expected, UpgradeRequest.Is(context));
        Assert.Contains(typeof(IHttpUpgradeFeature), read);
        Assert.Equal(expected, UpgradeRequest.Is(context)); // remembered: the second answer is the first
    }

    // YARP drops these Upgrade headers and forwards the request as an ordinary one: so it is admitted as one. Counted as
    // upgrades, they skipped every concurrency limit.
    [Theory]
    [InlineData("h2c")]
    [InlineData("foo/1")]
    [InlineData("websocket, h2c")]
    [InlineData("")]
    public void AnUpgradeYarpDoesNotCarryOut_IsNone(string upgrade)
    {
        var (context, _) = Request("GET", "Upgrade, HTTP2-Settings", new UpgradeFeature(true), extendedConnect: false);
        context.Request.Headers.Upgrade = upgrade;

        Assert.False(UpgradeRequest.Is(context));
    }

    private static (HttpContext Context, List<Type> Read) Request(string method, string? connection, IHttpUpgradeFeature upgrade, bool extendedConnect)
    {
        var features = new FeatureCollection();
        features.Set<IHttpRequestFeature>(new HttpRequestFeature { Method = method });
        features.Set<IHttpResponseFeature>(new HttpResponseFeature());
        features.Set(upgrade);
        features.Set<IHttpExtendedConnectFeature>(new ExtendedConnectFeature(extendedConnect));
        var recording = new RecordingFeatures(features);
        var context = new DefaultHttpContext(recording);
        if (connection is not null)
        {
            context.Request.Headers.Connection = connection;
        }

        recording.Read.Clear();
        return (context, recording.Read);
    }

    private sealed class UpgradeFeature(bool upgradable) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => upgradable;

        public Task<Stream> UpgradeAsync() => throw new NotSupportedException();
    }

    private sealed class ExtendedConnectFeature(bool extendedConnect) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => extendedConnect;

        public string? Protocol => extendedConnect ? "websocket" : null;

        public ValueTask<Stream> AcceptAsync() => throw new NotSupportedException();
    }

    /// <summary>A feature collection that lists the feature types read from it.</summary>
    private sealed class RecordingFeatures(IFeatureCollection inner) : IFeatureCollection
    {
        public List<Type> Read { get; } = [];

        public bool IsReadOnly => inner.IsReadOnly;

        public int Revision => inner.Revision;

        public object? this[Type key]
        {
            get
            {
                Read.Add(key);
                return inner[key];
            }

            set => inner[key] = value;
        }

        public TFeature? Get<TFeature>()
        {
            Read.Add(typeof(TFeature));
            return inner.Get<TFeature>();
        }

        public void Set<TFeature>(TFeature? instance) => inner.Set(instance);

        public IEnumerator<KeyValuePair<Type, object>> GetEnumerator() => inner.GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
