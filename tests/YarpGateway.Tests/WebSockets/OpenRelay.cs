using YarpGateway.Tests.Functional;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

internal static class OpenRelay
{
    /// <summary>
    /// The one open relay. A relay registers when the client side's upgrade returns, which can be just
    /// after the client has read its 101 (or 200) and the test has gone on, so this waits, bounded.
    /// </summary>
    public static async Task<WebSocketRelay> SingleAsync(WebSocketRelays relays)
    {
        Assert.True(await Eventually.TrueAsync(() => relays.Count >= 1, TimeSpan.FromSeconds(10)), "no relay registered");
        return Assert.Single(relays.Open);
    }

    /// <summary>The open relays once <paramref name="count"/> have registered (the same wait as <see cref="SingleAsync"/>).</summary>
    public static async Task<WebSocketRelay[]> AllAsync(WebSocketRelays relays, int count)
    {
        Assert.True(await Eventually.TrueAsync(() => relays.Count >= count, TimeSpan.FromSeconds(10)), $"{relays.Count} of {count} relays registered");
        var open = relays.Open.ToArray();
        Assert.Equal(count, open.Length);
        return open;
    }
}
