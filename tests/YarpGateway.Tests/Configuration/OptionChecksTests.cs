using YarpGateway.Configuration;
using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Configuration;

public class OptionChecksTests
{
    [Theory]
    [InlineData("10.0.0.5", true)]
    [InlineData("255.255.255.255", true)]
    [InlineData("::1", true)]
    [InlineData("fd00::5", true)]
    [InlineData("::ffff:10.0.0.5", true)]
    // .NET reads each of these as another address: 1.2.0.3, 10.0.0.1, 8.0.0.1 (octal), 0.0.0.10 (tried: KnownProxies ["1.2.3"] was accepted).
    [InlineData("1.2.3", false)]
    [InlineData("10.1", false)]
    [InlineData("010.0.0.1", false)]
    [InlineData("10", false)]
    [InlineData("0x0a.0.0.1", false)]
    [InlineData("10.0.0.256", false)]
    [InlineData("10.0.0.5.", false)]
    [InlineData("not-an-ip", false)]
    public void AnAddress_IsOnlyWhatItReads_AsWritten(string text, bool valid)
        => Assert.Equal(valid, OptionChecks.TryParseAddress(text, out _));

    [Theory]
    [InlineData("10.0.0.0/8", true)]
    [InlineData("fd00::/8", true)]
    [InlineData("10.1/16", false)] // 10.0.0.1/16: host bits, and not the network meant
    [InlineData("010.0.0.0/8", false)]
    [InlineData("10.0.0.1/8", false)]
    public void ANetwork_IsFourNumbersAndALength_WithNoHostBits(string text, bool valid)
        => Assert.Equal(valid, OptionChecks.TryParseNetwork(text, out _));

    [Theory]
    [InlineData("nonsense")] // threw in the validator: the error said only "This operation is not supported for a relative URI"
    [InlineData("ftp://127.0.0.1:4317")]
    public void AnOtlpEndpointThatIsNotAnAbsoluteHttpUrl_IsNamed(string endpoint)
    {
        var options = new TelemetryOptions();
        options.Otlp.Endpoint = new Uri(endpoint, UriKind.RelativeOrAbsolute);

        var result = new TelemetryOptionsValidator().Validate(null, options);

        Assert.Contains($"Gateway:Telemetry:Otlp:Endpoint must be an absolute http or https URL (http://otel-collector:4317); got {endpoint}", result.FailureMessage, StringComparison.Ordinal);
    }
}
