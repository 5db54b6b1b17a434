using System.Text.Json;

namespace YarpGateway.Tests.Endpoints;

/// <summary>The runtime settings the gateway ships with (measured in docs/performance-history.md).</summary>
public class RuntimeDefaultsTests
{
    [Fact]
    public void ThreadPoolWorkersDoNotSpin_InTheShippedRuntimeConfig()
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "YarpGateway.runtimeconfig.json")));
        var properties = config.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");

        Assert.Equal(0, properties.GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());
        Assert.True(properties.GetProperty("System.GC.Server").GetBoolean());
    }

    [Fact]
    public void InlineSocketCompletions_AreOnUnlessTheOperatorSaidOtherwise()
    {
        var before = Environment.GetEnvironmentVariable(RuntimeDefaults.InlineSocketCompletions);
        try
        {
            Environment.SetEnvironmentVariable(RuntimeDefaults.InlineSocketCompletions, "0");
            RuntimeDefaults.Apply();
            Assert.Equal("0", Environment.GetEnvironmentVariable(RuntimeDefaults.InlineSocketCompletions));

            Environment.SetEnvironmentVariable(RuntimeDefaults.InlineSocketCompletions, null);
            RuntimeDefaults.Apply();
            Assert.Equal("1", Environment.GetEnvironmentVariable(RuntimeDefaults.InlineSocketCompletions));
        }
        finally
        {
            Environment.SetEnvironmentVariable(RuntimeDefaults.InlineSocketCompletions, before);
        }
    }

    [Fact]
    public void SlowTierUp_IsReportedOnlyWithOneCpu_TheVariableUnset_AndCodeCompiledAtRunTime()
    {
        var before = Environment.GetEnvironmentVariable(RuntimeDefaults.TieringDelaySingleProcMultiplier);
        try
        {
            Environment.SetEnvironmentVariable(RuntimeDefaults.TieringDelaySingleProcMultiplier, null);
            Assert.True(RuntimeDefaults.SlowTierUp(processorCount: 1, compilesAtRunTime: true));
            Assert.False(RuntimeDefaults.SlowTierUp(processorCount: 2, compilesAtRunTime: true));
            Assert.False(RuntimeDefaults.SlowTierUp(processorCount: 1, compilesAtRunTime: false)); // native AOT: no tiering at all

            Environment.SetEnvironmentVariable(RuntimeDefaults.TieringDelaySingleProcMultiplier, "1");
            Assert.False(RuntimeDefaults.SlowTierUp(processorCount: 1, compilesAtRunTime: true));
        }
        finally
        {
            Environment.SetEnvironmentVariable(RuntimeDefaults.TieringDelaySingleProcMultiplier, before);
        }
    }
}
