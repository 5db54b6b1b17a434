using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

public class ConfigCheckArgumentsTests
{
    [Theory]
    [InlineData(new[] { "--check", "--config", "a.json" }, new[] { "--config", "a.json" })]
    [InlineData(new[] { "--config", "a.json", "--check" }, new[] { "--config", "a.json" })]
    [InlineData(new[] { "--CHECK=true", "--config", "a.json" }, new[] { "--config", "a.json" })] // served, before: a pipeline's step hung
    public void ACheck_IsTakenOut_OfWhatTheConfigurationReads(string[] args, string[] expected)
    {
        // Nothing added either: a Logging:LogLevel setting on the command line would hide the file's from the check.
        Assert.True(ConfigCheck.Requested(args, out var rest));
        Assert.Equal(expected, rest);
    }

    [Theory]
    [InlineData("--config a.json")]
    [InlineData("--config check")]
    [InlineData("--checks --config a.json")]
    public void NoCheck_LeavesTheArgumentsAsTheyAre(string commandLine)
    {
        var args = commandLine.Split(' ');
        Assert.False(ConfigCheck.Requested(args, out var rest));
        Assert.Equal(args, rest);
    }
}
