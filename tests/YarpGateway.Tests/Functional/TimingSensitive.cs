namespace YarpGateway.Tests.Functional;

/// <summary>
/// Tests that assert on elapsed time or rates (timeouts within ±20 %, admission at 100/s): they run
/// alone, after the parallel ones, so that other tests' load on the two cores does not skew them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingSensitive
{
    public const string Name = "Timing-sensitive";
}
