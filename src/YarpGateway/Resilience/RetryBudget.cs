namespace YarpGateway.Resilience;

/// <summary>
/// How many retries a cluster may still add: over the sliding window, retries may reach
/// <c>Ratio × requests</c>, and never fewer than <c>MinRetriesPerSecond × window</c>, so retries
/// cannot multiply an outage.
/// </summary>
internal sealed class RetryBudget(TimeProvider timeProvider, RetryBudgetOptions options)
{
    private readonly SlidingWindowCounter _counts = new(timeProvider, options.Window);

    public RetryBudgetOptions Options { get; } = options;

    public void RecordRequest() => _counts.AddTotal();

    /// <summary>Takes one retry from the budget; false when it is spent.</summary>
    public bool TryAcquireRetry()
    {
        var (requests, retries) = _counts.Sum();
        var allowed = Math.Max(Options.MinRetriesPerSecond * (double)_counts.Seconds, Options.Ratio * requests);
        if (retries + 1 > allowed)
        {
            return false;
        }

        _counts.AddMarked();
        return true;
    }
}
