using YarpGateway.LoadBalancing;

namespace YarpGateway.Tests.LoadBalancing;

public class WeightedScheduleTests
{
    [Fact]
    public void BuildOrder_FiveOneOne_IsNginxSmoothSequence()
    {
        // nginx's documented example: weights {5, 1, 1} give a a b a c a a.
        Assert.Equal([0, 0, 1, 0, 2, 0, 0], WeightedSchedule.BuildOrder([5, 1, 1]));
    }

    [Fact]
    public void BuildOrder_NeverSendsMoreThanItsShareInARow()
    {
        var order = WeightedSchedule.BuildOrder([3, 1]);
        Assert.Equal([0, 0, 1, 0], order);
    }

    [Fact]
    public void BuildOrder_ReducesByCommonDivisor()
    {
        Assert.Equal(WeightedSchedule.BuildOrder([1, 1]), WeightedSchedule.BuildOrder([500, 500]));
    }

    [Fact]
    public void BuildOrder_ZeroWeightNeverAppears()
    {
        var order = WeightedSchedule.BuildOrder([5, 3, 1, 0]);
        Assert.Equal(9, order.Length);
        Assert.DoesNotContain(3, order);
        Assert.Equal(5, order.Count(i => i == 0));
        Assert.Equal(3, order.Count(i => i == 1));
        Assert.Equal(1, order.Count(i => i == 2));
    }

    [Fact]
    public void BuildOrder_AllZero_IsEmpty()
    {
        Assert.Empty(WeightedSchedule.BuildOrder([0, 0]));
    }

    [Fact]
    public void BuildOrder_HugeWeightSum_IsCappedAndKeepsProportions()
    {
        var weights = Enumerable.Range(0, 20).Select(i => i == 0 ? 10_000 : 9_999).ToArray();
        var order = WeightedSchedule.BuildOrder(weights);
        Assert.InRange(order.Length, 1, WeightedSchedule.MaxLength);
        var counts = order.GroupBy(i => i).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(20, counts.Count);
        Assert.InRange(counts.Values.Max() - counts.Values.Min(), 0, 2);
    }
}
