using System.Collections.Concurrent;

namespace YarpGateway.Resilience;

/// <summary>One <see cref="RetryBudget"/> per cluster, replaced when the budget options change.</summary>
internal sealed class RetryBudgets(TimeProvider timeProvider)
{
    private readonly ConcurrentDictionary<string, RetryBudget> _byCluster = new(StringComparer.OrdinalIgnoreCase);

    public RetryBudget For(string clusterId, RetryBudgetOptions options)
    {
        if (_byCluster.TryGetValue(clusterId, out var budget) && ReferenceEquals(budget.Options, options))
        {
            return budget;
        }

        return _byCluster.AddOrUpdate(
            clusterId,
            static (_, state) => new RetryBudget(state.timeProvider, state.options),
            static (_, existing, state) => ReferenceEquals(existing.Options, state.options) ? existing : new RetryBudget(state.timeProvider, state.options),
            (timeProvider, options));
    }
}
