using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Telemetry;

public class ZeroSeriesBudgetTests
{
    [Fact]
    public void KeysFitWhole_AKeySeenBeforeIsFree_AndNothingPastTheBudget()
    {
        var budget = new ZeroSeriesBudget(max: 10);

        Assert.True(budget.TryReserve("a", 4));
        Assert.True(budget.TryReserve("b", 4));
        Assert.True(budget.TryReserve("a", 4)); // published before: a reload publishes it again, at no cost
        Assert.False(budget.TryReserve("c", 4)); // 12 > 10: none of c's, not part of them
        Assert.True(budget.TryReserve("d", 2)); // exactly 10
        Assert.False(budget.TryReserve("e", 1));
        Assert.Equal(1000, ZeroSeriesBudget.DefaultMax); // half of OpenTelemetry's 2,000 per instrument
    }
}
