using Microsoft.Extensions.Time.Testing;
using System.Threading.RateLimiting;
using YarpGateway.Admission;
using YarpGateway.Configuration;
using YarpGateway.Tests.Resilience;

namespace YarpGateway.Tests.Admission;

/// <summary>The adaptive ("auto") concurrency limit as units: the gradient controller against model backends, the limiter, the settings.</summary>
public class GradientConcurrencyTests
{
    /// <summary>
    /// <paramref name="clients"/> clients always busy against a backend whose latency is
    /// <paramref name="latency"/>(in flight); one call per 100 ms window with that window's samples.
    /// Returns the limit after each window, leaving out the windows where the baseline was being measured
    /// (the limit is then at its minimum, by design; <paramref name="probes"/> counts them).
    /// </summary>
    private static List<int> Simulate(GradientConcurrencyController controller, FakeTimeProvider clock, int clients, Func<int, double> latency, int windows)
        => Simulate(controller, clock, clients, latency, windows, out _);

    private static List<int> Simulate(GradientConcurrencyController controller, FakeTimeProvider clock, int clients, Func<int, double> latency, int windows, out int probes)
    {
        var limits = new List<int>();
        probes = 0;
        for (var w = 0; w < windows; w++)
        {
            var inFlight = Math.Min(clients, controller.Limit);
            var seconds = latency(inFlight);
            var samples = Math.Max(1, (int)(inFlight * 0.1 / seconds));
            for (var i = 0; i < samples; i++)
            {
                clock.Advance(TimeSpan.FromMilliseconds(100.0 / samples));
                controller.Sample(TimeSpan.FromSeconds(seconds), inFlight, clock.GetTimestamp(), clock);
            }

            if (controller.Probing)
            {
                probes++;
            }
            else
            {
                limits.Add(controller.Limit);
            }
        }

        return limits;
    }

    // 10 ms up to 20 in flight, then 15 ms more per request beyond.
    private static double Knee(int inFlight) => 0.010 + (0.015 * Math.Max(0, inFlight - 20));

    [Fact]
    public void ABackendThatSlowsPast20InFlight_GetsALimitThatSettlesNear20()
    {
        var clock = new FakeTimeProvider();
        var controller = new GradientConcurrencyController(4, 1000, 50, clock.GetTimestamp());

        var limits = Simulate(controller, clock, clients: 200, Knee, windows: 600, out var probes); // 60 s
        var steady = limits.Skip(100).ToList();

        Assert.InRange(probes, 1, 6); // at start and about every 30 s, a window or so each

        Assert.All(steady, limit => Assert.InRange(limit, 15, 30));
        var admittedLatency = steady.Select(l => Knee(l)).Max();
        Assert.True(admittedLatency <= 0.010 + (0.015 * 10), $"admitted requests' latency up to {admittedLatency * 1000} ms");
    }

    [Fact]
    public void ABackendThatIsFine_LetsTheLimitGrowToWhatTheClientsUse_WithinTheBound()
    {
        var clock = new FakeTimeProvider();
        var controller = new GradientConcurrencyController(4, 300, 50, clock.GetTimestamp());

        var limits = Simulate(controller, clock, clients: 1000, _ => 0.010, windows: 600);

        Assert.Equal(300, limits[^1]);
        Assert.DoesNotContain(limits, l => l > 300);
    }

    [Fact]
    public void UnusedHeadroom_DoesNotGrowTheLimit()
    {
        var clock = new FakeTimeProvider();
        var controller = new GradientConcurrencyController(4, 1000, 50, clock.GetTimestamp());

        var limits = Simulate(controller, clock, clients: 10, _ => 0.010, windows: 300);

        Assert.Equal(50, limits[^1]); // ten clients never use half of 50
    }

    [Fact]
    public void ABackendThatBecameSlowerForGood_IsAdopted_TheLimitComesBack()
    {
        var clock = new FakeTimeProvider();
        var controller = new GradientConcurrencyController(4, 1000, 50, clock.GetTimestamp());
        Simulate(controller, clock, clients: 200, Knee, windows: 200);

        // Twice as slow at every concurrency: first the limit is cut, then the baseline follows.
        var limits = Simulate(controller, clock, clients: 200, inFlight => 2 * Knee(inFlight), windows: 600);

        Assert.True(limits.Take(30).Min() < 15, $"not cut: {limits.Take(30).Min()}");
        Assert.All(limits.Skip(400), limit => Assert.InRange(limit, 12, 30));
        Assert.DoesNotContain(limits, l => l < 4);
    }

    [Fact]
    public void ColdFirstRequests_DoNotSetTheBaseline()
    {
        // A new limit's first requests also open the backend connections and run cold code: the
        // samples measured in a functional test were 30 to 57 ms against a steady 7 to 10 ms.
        var clock = new FakeTimeProvider();
        var controller = new GradientConcurrencyController(4, 1000, 50, clock.GetTimestamp());
        double[] cold = [0.057, 0.045, 0.036, 0.030, 0.030, 0.025];
        var sent = 0;
        while (controller.Probing && sent < 100)
        {
            clock.Advance(TimeSpan.FromMilliseconds(2));
            controller.Sample(TimeSpan.FromSeconds(sent < cold.Length ? cold[sent] : 0.008), inFlight: 4, clock.GetTimestamp(), clock);
            sent++;
        }

        Assert.False(controller.Probing);
        Assert.Equal(0.008, controller.BaselineSeconds, precision: 6);

        // Then the knee is found from the right baseline: a backend at 8 ms that slows past 20 in flight.
        var limits = Simulate(controller, clock, clients: 200, inFlight => 0.008 + (0.015 * Math.Max(0, inFlight - 20)), windows: 300);
        Assert.All(limits.Skip(100), limit => Assert.InRange(limit, 15, 30));
    }

    [Fact]
    public async Task TheLimiter_QueuesPastItsLimit_AndServesInOrderAsRequestsFinish()
    {
        var clock = new FakeTimeProvider();
        var controller = new GradientConcurrencyController(2, 2, 2, clock.GetTimestamp());
        using var limiter = new AdjustableConcurrencyLimiter(controller, queueLimit: 2, clock);

        var first = limiter.AttemptAcquire();
        var second = await limiter.AcquireAsync();
        Assert.True(first.IsAcquired && second.IsAcquired);
        Assert.False(limiter.AttemptAcquire().IsAcquired);
        var third = limiter.AcquireAsync().AsTask();
        var fourth = limiter.AcquireAsync().AsTask();
        Assert.False((await limiter.AcquireAsync()).IsAcquired); // the queue holds two
        Assert.Equal(2, limiter.InUse);

        first.Dispose();
        Assert.True((await third.WaitAsync(TimeSpan.FromSeconds(5))).IsAcquired);
        Assert.False(fourth.IsCompleted);
        second.Dispose();
        var last = await fourth.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(last.IsAcquired);
        Assert.Equal(2, limiter.InUse);
    }

    [Theory]
    [InlineData("auto", null, null, true, 4, 1000, 50)]
    [InlineData("AUTO", "10", "30", true, 10, 30, 30)]
    [InlineData("auto", "60", "100", true, 60, 100, 60)]
    [InlineData("200", null, null, false, 4, 1000, 200)]
    public void Settings_ReadAuto_AndItsBounds(string max, string? autoMin, string? autoMax, bool auto, int min, int top, int start)
    {
        var metadata = Metadata(max, autoMin, autoMax);
        var errors = new List<ConfigError>();
        var settings = ConcurrencyLimitSettings.FromMetadata(metadata, "m", errors)!;

        Assert.Empty(errors);
        Assert.Equal((auto, min, top, start), (settings.Auto, settings.AutoMin, settings.AutoMax, settings.MaxConcurrency));
    }

    [Theory]
    [InlineData("auto", "0", null, "m:AutoMinConcurrency")]
    [InlineData("auto", "50", "10", "m:AutoMaxConcurrency")]
    [InlineData("100", "5", null, "m")]
    [InlineData("lots", null, null, "m:MaxConcurrency")]
    public void Settings_BadAutoValues_AreErrors(string max, string? autoMin, string? autoMax, string key)
    {
        var metadata = Metadata(max, autoMin, autoMax);
        var errors = new List<ConfigError>();
        Assert.Null(ConcurrencyLimitSettings.FromMetadata(metadata, "m", errors));
        Assert.Equal(key, Assert.Single(errors).Key);
    }

    private static Dictionary<string, string> Metadata(string max, string? autoMin, string? autoMax)
    {
        var metadata = new Dictionary<string, string> { ["MaxConcurrency"] = max };
        if (autoMin is not null)
        {
            metadata["AutoMinConcurrency"] = autoMin;
        }

        if (autoMax is not null)
        {
            metadata["AutoMaxConcurrency"] = autoMax;
        }

        return metadata;
    }
}
