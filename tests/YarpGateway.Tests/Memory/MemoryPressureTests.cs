using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using YarpGateway.Configuration;
using YarpGateway.Memory;

namespace YarpGateway.Tests.Memory;

/// <summary>When new clients are held back for the GC heap's size, and when they are taken again.</summary>
public class MemoryPressureTests
{
    private const long Limit = 1000;

    private sealed class Fixture : IDisposable
    {
        public long Heap;
        public int Refreshes;
        public readonly FakeTimeProvider Time = new();
        public readonly MemoryPressure Pressure;

        public Fixture(double refuseNewAbove = 0.8)
        {
            var configuration = new ConfigurationBuilder()
                .AddInMemoryCollection(new Dictionary<string, string?> { [MemoryOptions.SectionName + ":RefuseNewAbove"] = refuseNewAbove.ToString(System.Globalization.CultureInfo.InvariantCulture) })
                .Build();
            var options = new ReloadableOptions<MemoryOptions>(
                new Microsoft.Extensions.Options.OptionsFactory<MemoryOptions>([new Microsoft.Extensions.Options.ConfigureNamedOptions<MemoryOptions>(Microsoft.Extensions.Options.Options.DefaultName, o => configuration.GetSection(MemoryOptions.SectionName).Bind(o))], []),
                configuration, Telemetry.TestMetrics.Config(), NullLoggerFactory.Instance, MemoryOptions.SectionName);
            Pressure = new MemoryPressure(options, Time, NullLogger<MemoryPressure>.Instance, () => (Heap, Limit), () => Refreshes++);
        }

        public void Dispose() => Pressure.Dispose();

        public void Read(long heap)
        {
            Heap = heap;
            Pressure.Sample();
        }
    }

    [Fact]
    public async Task OverTheThreshold_NewClientsWait_UntilTheHeapIsUnderItLessATenth()
    {
        using var f = new Fixture();
        f.Read(799);
        Assert.False(f.Pressure.IsHigh);
        Assert.True(f.Pressure.WaitUntilEasedAsync(CancellationToken.None).AsTask().IsCompletedSuccessfully);

        f.Read(800);
        Assert.True(f.Pressure.IsHigh);
        var waiting = f.Pressure.WaitUntilEasedAsync(CancellationToken.None).AsTask();

        f.Read(750); // under the threshold, not under it less a tenth: no flapping
        f.Read(701);
        Assert.True(f.Pressure.IsHigh);
        Assert.False(waiting.IsCompleted);

        f.Read(699);
        Assert.False(f.Pressure.IsHigh);
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void WhileHigh_AFullCollectionIsAskedForEvery5Seconds_SoAQuietGatewaySeesWhatWasFreed()
    {
        using var f = new Fixture();
        f.Read(900);
        for (var i = 0; i < 49; i++)
        {
            f.Time.Advance(TimeSpan.FromMilliseconds(100));
            f.Read(900);
        }

        Assert.Equal(0, f.Refreshes);
        f.Time.Advance(TimeSpan.FromMilliseconds(100));
        f.Read(900);
        Assert.Equal(1, f.Refreshes);

        f.Read(100);
        f.Time.Advance(TimeSpan.FromSeconds(10));
        f.Read(100);
        Assert.Equal(1, f.Refreshes); // not while the heap is low
    }

    [Theory]
    [InlineData(0.8, 0.7)]
    [InlineData(0.2, 0.1)]
    [InlineData(0.1, 0.05)] // a threshold under 0.2 is left at half of it: never at or below 0
    public void NewClientsAreTakenAgain_UnderTheThresholdLessATenth_OrHalfOfALowOne(double threshold, double resume)
        => Assert.Equal(resume, MemoryPressure.ResumeBelow(threshold), 6);

    [Fact]
    public void AThresholdOf1_TurnsItOff()
    {
        using var f = new Fixture(refuseNewAbove: 1);
        f.Read(Limit);
        Assert.False(f.Pressure.IsHigh);
    }

    [Fact]
    public void AWebSocket_Gets503WithRetryAfter_WhileHigh()
    {
        using var f = new Fixture();
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        Assert.True(f.Pressure.TryAdmitUpgrade(context, TimeSpan.FromSeconds(2)));

        f.Read(900);
        Assert.False(f.Pressure.TryAdmitUpgrade(context, TimeSpan.FromSeconds(2)));
        Assert.Equal(503, context.Response.StatusCode);
        Assert.Equal("2", context.Response.Headers.RetryAfter.ToString());
        Assert.Equal(1, f.Pressure.RefusedUpgrades);
    }
}
