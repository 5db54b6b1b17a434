using YarpGateway.Admission;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Admission;

public class ConcurrencyLimitSettingsTests
{
    private static (ConcurrencyLimitSettings? Settings, List<ConfigError> Errors) Parse(params (string Key, string Value)[] metadata)
    {
        var errors = new List<ConfigError>();
        var settings = ConcurrencyLimitSettings.FromMetadata(metadata.ToDictionary(kv => kv.Key, kv => kv.Value), "R:Metadata", errors);
        return (settings, errors);
    }

    [Fact]
    public void NoLimit_IsNull()
    {
        var (settings, errors) = Parse(("Other", "x"));
        Assert.Null(settings);
        Assert.Empty(errors);
    }

    [Fact]
    public void ConcurrencyOnly_UsesQueueDefaults()
    {
        var (settings, errors) = Parse(("MaxConcurrency", "200"));
        Assert.Empty(errors);
        Assert.Equal(new ConcurrencyLimitSettings(200, 0, TimeSpan.FromSeconds(5)), settings);
    }

    [Fact]
    public void AllThree_AreRead()
    {
        var (settings, _) = Parse(("MaxConcurrency", "200"), ("MaxQueue", "1000"), ("QueueTimeout", "00:00:02"));
        Assert.Equal(new ConcurrencyLimitSettings(200, 1000, TimeSpan.FromSeconds(2)), settings);
    }

    [Theory]
    [InlineData("MaxConcurrency", "0", "'0' is not a whole number of at least 1, or \"auto\".")]
    [InlineData("MaxConcurrency", "-3", "'-3' is not a whole number of at least 1, or \"auto\".")]
    [InlineData("MaxConcurrency", "ten", "'ten' is not a whole number of at least 1, or \"auto\".")]
    [InlineData("MaxQueue", "-1", "'-1' is not a whole number of at least 0.")]
    [InlineData("MaxQueue", "1.5", "'1.5' is not a whole number of at least 0.")]
    [InlineData("QueueTimeout", "soon", "'soon' is not a positive time span of at most 24.20:31:23 (e.g. 00:00:05 for 5 seconds).")]
    [InlineData("QueueTimeout", "-00:00:01", "'-00:00:01' is not a positive time span of at most 24.20:31:23 (e.g. 00:00:05 for 5 seconds).")]
    [InlineData("QueueTimeout", "60.00:00:00", "'60.00:00:00' is not a positive time span of at most 24.20:31:23 (e.g. 00:00:05 for 5 seconds).")]
    public void BadValue_IsAnErrorNamingTheKey(string key, string value, string message)
    {
        var metadata = new List<(string, string)> { ("MaxConcurrency", "10") };
        metadata.RemoveAll(kv => kv.Item1 == key);
        metadata.Add((key, value));

        var (settings, errors) = Parse([.. metadata]);

        Assert.Null(settings);
        var error = Assert.Single(errors);
        Assert.Equal("R:Metadata:" + key, error.Key);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void QueueWithoutConcurrency_IsAnError()
    {
        var (settings, errors) = Parse(("MaxQueue", "10"));
        Assert.Null(settings);
        Assert.Contains("need MaxConcurrency", Assert.Single(errors).Message, StringComparison.Ordinal);
    }
}
