using Microsoft.Extensions.Time.Testing;
using YarpGateway.Health;
using YarpGateway.Telemetry;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Telemetry;

/// <summary>
/// A shared backend going down turns every destination of many clusters unhealthy at once: tried with 1,250 clusters of
/// three, the log got 5,000 warnings in seconds. Ten a second of each kind are written one by one, the rest as a count.
/// Read through active health checks' budget, whose kinds are: destinations unhealthy, healthy again, clusters
/// all failing, and all failing with none left.
/// </summary>
public class ChangeLineBudgetTests
{
    private static readonly ChangeLineBudget.Kind Unhealthy = ActiveHealthLog.TurnedUnhealthy;
    private static readonly ChangeLineBudget.Kind Healthy = ActiveHealthLog.TurnedHealthy;
    private static readonly ChangeLineBudget.Kind AllFailing = ActiveHealthLog.AllFailingKind;
    private static readonly ChangeLineBudget.Kind AllFailingNone = ActiveHealthLog.AllFailingNoneKind;
    private const int LinesPerSecond = ChangeLineBudget.LinesPerSecond;

    private static (ChangeLineBudget Budget, CapturingLoggerProvider Lines, FakeTimeProvider Clock) Create()
    {
        var lines = new CapturingLoggerProvider();
        var clock = new FakeTimeProvider();
        var factory = LoggerFactory.Create(builder => builder.AddProvider(lines).SetMinimumLevel(LogLevel.Debug));
        return (ActiveHealthLog.Budget(clock, factory.CreateLogger<ActiveHealthLog>()), lines, clock);
    }

    [Fact]
    public void PastTenASecondOfAKind_ChangesAreCounted_AndTheCountWrittenWhenTheSecondEnds()
    {
        var (budget, lines, clock) = Create();
        using var disposing = budget;

        var taken = Enumerable.Range(0, 40).Count(i => budget.TryTake(Unhealthy, $"c{i / 3}"));
        Assert.Equal(LinesPerSecond, taken);
        Assert.True(budget.TryTake(AllFailing, "c0")); // another kind: its own ten
        Assert.True(budget.TryTake(Healthy, "c0"));
        Assert.Empty(lines.Lines); // the count waits for the second's end

        clock.Advance(TimeSpan.FromSeconds(1));

        var line = Assert.Single(lines.Lines);
        Assert.Equal("Warning YarpGateway.Health.ActiveHealthLog[ChangesHeldBack] 30 more destinations failed their active health checks in the last second, in 11 cluster(s) (c3, c4, c5, c6, c7, ...), not logged one by one (at most 10 a second of each kind are). gateway_cluster_available_destinations and /status show every cluster.", line);

        // A new second: ten again.
        Assert.Equal(LinesPerSecond, Enumerable.Range(0, 12).Count(_ => budget.TryTake(Unhealthy, "c1")));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, lines.Lines.Count);
        Assert.Contains("2 more destinations failed their active health checks in the last second, in 1 cluster(s) (c1),", lines.Lines.ElementAt(1), StringComparison.Ordinal);
    }

    [Fact]
    public void ClustersLeftWithoutDestinations_AreCountedByTheirOwnKind_AtTheirOwnLevel()
    {
        var (budget, lines, clock) = Create();
        using var disposing = budget;

        for (var i = 0; i < 12; i++)
        {
            budget.TryTake(AllFailingNone, $"c{i}");
        }

        clock.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal("Error YarpGateway.Health.ActiveHealthLog[ChangesHeldBack] 2 more clusters had every destination fail its active health checks, and their AvailableDestinationsPolicy left none (their requests get 503) in the last second (c10, c11), not logged one by one (at most 10 a second of each kind are). gateway_cluster_available_destinations and /status show every cluster.", Assert.Single(lines.Lines));
    }

    [Fact]
    public void AQuietLog_WritesNothingExtra()
    {
        var (budget, lines, clock) = Create();
        using var disposing = budget;

        Assert.True(budget.TryTake(Unhealthy, "c1"));
        clock.Advance(TimeSpan.FromSeconds(5));

        Assert.Empty(lines.Lines);
    }
}
