using YarpGateway.LoadBalancing;

namespace YarpGateway.Tests.LoadBalancing;

public class DestinationWeightTests
{
    [Theory]
    [InlineData(null, 1)]
    [InlineData("", 1)]
    [InlineData("0", 0)]
    [InlineData("3", 3)]
    [InlineData("10000", 10000)]
    public void TryParse_Valid(string? text, int expected)
    {
        Assert.True(DestinationWeight.TryParse(text, out var weight, out var error));
        Assert.Equal(expected, weight);
        Assert.Null(error);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("10001")]
    [InlineData("three")]
    [InlineData(" 3")]
    [InlineData("99999999999")]
    public void TryParse_Invalid_SaysWhatIsAllowed(string text)
    {
        Assert.False(DestinationWeight.TryParse(text, out _, out var error));
        Assert.Contains($"'{text}'", error, StringComparison.Ordinal);
        Assert.Contains("0 (drained) to 10000", error, StringComparison.Ordinal);
    }
}
