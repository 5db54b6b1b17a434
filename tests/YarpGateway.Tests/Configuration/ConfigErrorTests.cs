using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

public class ConfigErrorTests
{
    [Theory]
    // An options validator's failure names its key first: that key is the error's, and is said once.
    [InlineData("Gateway:WebSockets", "Gateway:WebSockets:OutboundBufferBytes must be from 1024 to 67108864; got 10.", "Gateway:WebSockets:OutboundBufferBytes", "Gateway:WebSockets:OutboundBufferBytes must be from 1024 to 67108864; got 10.")]
    [InlineData("Gateway:RateLimiting", "Gateway:RateLimiting:Policies:p: 'Disable' is reserved.", "Gateway:RateLimiting:Policies:p", "Gateway:RateLimiting:Policies:p: 'Disable' is reserved.")]
    // Options that fail before start-up's check know no section (Kestrel reads Gateway:Transport first): before, ": Gateway:Transport:...".
    [InlineData("", "Gateway:Transport:Backlog must be from 1 to 65535; got 0.", "Gateway:Transport:Backlog", "Gateway:Transport:Backlog must be from 1 to 65535; got 0.")]
    // A failure that does not start with a key of the section keeps the section as its key.
    [InlineData("Gateway:Memory", "RefuseNewAbove needs MaxHeapBytes.", "Gateway:Memory", "Gateway:Memory: RefuseNewAbove needs MaxHeapBytes.")]
    [InlineData("Gateway:Memory", "Gateway:MemoryX:A must be set.", "Gateway:Memory", "Gateway:Memory: Gateway:MemoryX:A must be set.")]
    public void AnOptionsFailure_IsKeyedByTheKeyItNames_AndSaysItOnce(string section, string failure, string key, string shown)
    {
        var error = ConfigError.FromFailure(section, failure);

        Assert.Equal(key, error.Key);
        Assert.Equal(shown, error.ToString());
        Assert.Equal("/etc/gw.json: " + shown, (error with { File = "/etc/gw.json" }).ToString());
    }
}
