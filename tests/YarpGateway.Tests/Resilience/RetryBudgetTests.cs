using Microsoft.Extensions.Time.Testing;
using YarpGateway.Resilience;

namespace YarpGateway.Tests.Resilience;

public class RetryBudgetTests
{
    [Fact]
    public void QuietCluster_GetsTheMinimumPerSecondOverTheWindow()
    {
        var clock = new FakeTimeProvider();
        var budget = new RetryBudget(clock, new RetryBudgetOptions { Ratio = 0.2, MinRetriesPerSecond = 3, Window = TimeSpan.FromSeconds(10) });

        var granted = Enumerable.Range(0, 100).Count(_ => budget.TryAcquireRetry());

        Assert.Equal(30, granted);
    }

    [Fact]
    public void BusyCluster_GetsTheRatioOfItsRequests()
    {
        var clock = new FakeTimeProvider();
        var budget = new RetryBudget(clock, new RetryBudgetOptions { Ratio = 0.2, MinRetriesPerSecond = 0, Window = TimeSpan.FromSeconds(10) });
        for (var i = 0; i < 1000; i++)
        {
            budget.RecordRequest();
        }

        Assert.Equal(200, Enumerable.Range(0, 1000).Count(_ => budget.TryAcquireRetry()));
    }

    [Fact]
    public void SpentBudget_RecoversAsTheWindowSlides()
    {
        var clock = new FakeTimeProvider();
        var budget = new RetryBudget(clock, new RetryBudgetOptions { Ratio = 0, MinRetriesPerSecond = 1, Window = TimeSpan.FromSeconds(5) });
        Assert.Equal(5, Enumerable.Range(0, 10).Count(_ => budget.TryAcquireRetry()));

        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.False(budget.TryAcquireRetry()); // all five were taken in the same second, still in the window

        clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(5, Enumerable.Range(0, 10).Count(_ => budget.TryAcquireRetry()));
    }
}
