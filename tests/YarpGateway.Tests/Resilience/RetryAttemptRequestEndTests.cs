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

        Assert.True(attempt.EndRequest()); // done here: the attempt may go back to the pool
        Assert.False(attempt.EndRequest()); // a second end does nothing

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

        Assert.False(attempt.EndRequest()); // not handed over: the outer frame may still read it, so it is not given back

        Assert.False(attempt.TakeRequestEnd(end, lease: null, started: 1));
        Assert.False(attempt.EndRequest());
        Assert.Empty(end.Calls);
    }

    [Fact]
    public void GivenBackToThePool_AnAttemptKeepsNothingOfItsRequest_AndServesTheNextAsANewOne()
    {
        var metrics = new ResilienceMetrics(_services.GetRequiredService<IMeterFactory>());
        var policy = new RetryAttempt.Policy(metrics);
        using var attempt = policy.Create();
        var first = new DefaultHttpContext();
        var settings = new ResilienceSettings(MaxRetries: 1, RetryStatusCodes: new HashSet<int> { 503 }, TryTimeout: TimeSpan.FromSeconds(5), RetryIdempotent: false, MaxRetryBodyBytes: 0);
        var budget = new RetryBudget(TimeProvider.System, new RetryBudgetOptions());
        attempt.Start(first, new ReverseProxyFeature(), settings, budget, retryUnsent: true, repeatable: true);
        attempt.Begin(TimeProvider.System); // the try timeout's token swapped in
        first.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        Assert.True(attempt.TryReserveRetryForStatus(503)); // held back for a retry
        Assert.True(attempt.End());
        Assert.Equal(AttemptFailure.Status, attempt.LastFailure);
        attempt.TimeoutKind = "try";
        Assert.True(attempt.TakeRequestEnd(new RecordingEnd(), lease: null, started: 7));
        Assert.True(attempt.EndRequest());

        Assert.True(policy.Return(attempt));

        Assert.Null(attempt.Context);
        Assert.Null(attempt.Proxy);
        Assert.Equal(0, attempt.Number);
        Assert.Equal(AttemptFailure.None, attempt.LastFailure);
        Assert.Null(attempt.TimeoutKind);
        Assert.False(attempt.RetryReserved);
        Assert.Empty(attempt.Candidates);

        // The next request: its own context, a first attempt, and a hand-over that works again.
        var second = new DefaultHttpContext();
        var proxy = new ReverseProxyFeature();
        attempt.Start(second, proxy, settings, budget, retryUnsent: false, repeatable: false);
        attempt.Begin(TimeProvider.System);
        Assert.Same(second, attempt.Context);
        Assert.Same(proxy, attempt.Proxy);
        Assert.Equal(1, attempt.Number);
        Assert.False(attempt.RetryUnsent);
        var end = new RecordingEnd();
        Assert.True(attempt.TakeRequestEnd(end, lease: null, started: 8));
        attempt.End();
        Assert.True(attempt.EndRequest());
        Assert.Same(second, Assert.Single(end.Calls).Context);
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
        return new RetryAttempt(context, new ReverseProxyFeature(), settings, budget, retryUnsent: true, repeatable: true, metrics);
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
