using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Model;
using YarpGateway.Resilience;

namespace YarpGateway.Tests.Resilience;

/// <summary>
/// The request's outer frame hands its end of the request to the retry middleware's frame (<see cref="RetryAttempt.TakeRequestEnd"/>),
/// which does it when it ends (<see cref="RetryAttempt.EndRequest"/>): exactly once when handed over in time, never when the
/// retry frame had already ended (the outer frame then does it itself), whatever the order on two threads.
/// </summary>
public sealed class RetryAttemptRequestEndTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public void Dispose() => _services.Dispose();

    [Fact]
    public void HandedOverFirst_IsDoneOnceWhenTheRetryFrameEnds_WithTheLeaseAndStart()
    {
        using var attempt = NewAttempt(out var context);
        var end = new RecordingEnd();
        using var lease = new TestLease();

        Assert.True(attempt.TakeRequestEnd(end, lease, started: 42));
        Assert.Empty(end.Calls); // not before the retry frame ends

        attempt.EndRequest();
        attempt.EndRequest(); // a second end does nothing

        var call = Assert.Single(end.Calls);
        Assert.Same(context, call.Context);
        Assert.Same(lease, call.Lease);
        Assert.Equal(42, call.Started);
    }

    [Fact]
    public void TheRetryFrameEndedFirst_TheHandOverIsRefused_AndNothingIsDoneHere()
    {
        using var attempt = NewAttempt(out _);
        var end = new RecordingEnd();

        attempt.EndRequest();

        Assert.False(attempt.TakeRequestEnd(end, lease: null, started: 1));
        attempt.EndRequest();
        Assert.Empty(end.Calls);
    }

    [Fact]
    public async Task OnTwoThreadsAtOnce_TheEndIsDoneExactlyOnce_ByOneSideOrTheOther()
    {
        for (var i = 0; i < 2_000; i++)
        {
            using var attempt = NewAttempt(out _);
            var end = new RecordingEnd();
            using var start = new Barrier(2);
            var ending = Task.Run(() =>
            {
                start.SignalAndWait(TimeSpan.FromSeconds(10));
                attempt.EndRequest();
            });
            start.SignalAndWait(TimeSpan.FromSeconds(10));
            var taken = attempt.TakeRequestEnd(end, lease: null, started: i);
            await ending.WaitAsync(TimeSpan.FromSeconds(10));

            // Taken: the retry frame did it; refused: the outer frame does it itself. Either way once.
            Assert.Equal(taken ? 1 : 0, end.Calls.Count);
        }
    }

    private RetryAttempt NewAttempt(out HttpContext context)
    {
        context = new DefaultHttpContext();
        var settings = new ResilienceSettings(MaxRetries: 1, RetryStatusCodes: new HashSet<int>(), TryTimeout: null, RetryIdempotent: false, MaxRetryBodyBytes: 0);
        var budget = new RetryBudget(TimeProvider.System, new RetryBudgetOptions());
        var metrics = new ResilienceMetrics(_services.GetRequiredService<IMeterFactory>());
        return new RetryAttempt(context, new ReverseProxyFeature(), settings, budget, eligible: true, repeatable: true, metrics);
    }

    private sealed class RecordingEnd : IProxiedRequestEnd
    {
        public List<(HttpContext Context, RateLimitLease? Lease, long Started)> Calls { get; } = [];

        public void RequestEnded(HttpContext context, RateLimitLease? lease, long started)
        {
            lock (Calls)
            {
                Calls.Add((context, lease, started));
            }
        }
    }

    private sealed class TestLease : RateLimitLease
    {
        public override bool IsAcquired => true;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
