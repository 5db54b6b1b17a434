using YarpGateway.ProxyProtocol;

namespace YarpGateway.Tests.ProxyProtocol;

/// <summary><c>Gateway:ProxyProtocol</c>'s validation: every bad value listed at once.</summary>
public class ProxyProtocolOptionsValidatorTests
{
    [Theory]
    [InlineData(true, new string[0], 0)]
    [InlineData(true, new[] { "10.0.0.0/8", "fd00::/8" }, 0)]
    [InlineData(true, new[] { "10.1.2.3/8", "10.0.0.1", "nonsense" }, 3)] // host bits, no prefix, not an address
    [InlineData(false, new[] { "10.0.0.0/8" }, 1)] // trusted networks with nothing to trust them for
    [InlineData(false, new string[0], 0)]
    public void TheOptions_ListEveryError(bool enabled, string[] networks, int errors)
    {
        var result = new ProxyProtocolOptionsValidator().Validate(null, new ProxyProtocolOptions { Enabled = enabled, TrustedNetworks = [.. networks] });

        Assert.Equal(errors, result.Failed ? result.Failures!.Count() : 0);
    }

    [Fact]
    public void NotRequired_WithoutEnabled_IsAnError()
    {
        var result = new ProxyProtocolOptionsValidator().Validate(null, new ProxyProtocolOptions { Required = false });

        Assert.Equal("Gateway:ProxyProtocol:Enabled is not true, but TrustedNetworks or Required is set: no header would be read.", Assert.Single(result.Failures!));
    }
}
