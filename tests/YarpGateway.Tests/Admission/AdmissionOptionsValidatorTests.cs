using YarpGateway.Admission;

namespace YarpGateway.Tests.Admission;

public class AdmissionOptionsValidatorTests
{
    [Fact]
    public void Defaults_AreValid()
    {
        Assert.True(new AdmissionOptionsValidator().Validate(null, new AdmissionOptions()).Succeeded);
    }

    [Fact]
    public void GlobalOff_IsValid()
    {
        var options = new AdmissionOptions();
        options.Global.MaxConcurrency = 0;
        options.Connections.RatePerSecond = 0;
        options.Connections.MaxFirstRequestConnections = 0;
        Assert.True(new AdmissionOptionsValidator().Validate(null, options).Succeeded);
    }

    [Fact]
    public void EveryBadValue_IsListed()
    {
        var options = new AdmissionOptions
        {
            RetryAfter = TimeSpan.Zero,
            MaxConcurrentConnections = 0,
            MaxConcurrentUpgradedConnections = -1,
        };
        options.Global.MaxConcurrency = -1;
        options.Global.MaxQueue = -1;
        options.Global.QueueTimeout = TimeSpan.FromSeconds(-1);
        options.Connections.RatePerSecond = 10;
        options.Connections.Burst = 0;
        options.Connections.MaxWait = TimeSpan.Zero;
        options.Connections.MaxWaiting = -5;
        options.Connections.MaxFirstRequestConnections = -1;
        options.Connections.AcceptWindow = -1;
        options.Connections.MaxFirstRequestTime = TimeSpan.Zero;
        options.Upgrades.RatePerSecond = -1;
        options.Upgrades.RetryAfterMin = TimeSpan.FromSeconds(5);
        options.Upgrades.RetryAfterMax = TimeSpan.FromSeconds(2);

        var failures = new AdmissionOptionsValidator().Validate(null, options).Failures!.ToList();

        string[] keys =
        [
            "Global:MaxConcurrency", "Global:MaxQueue", "Global:QueueTimeout", "RetryAfter", "Connections:Burst",
            "Connections:MaxFirstRequestConnections", "Connections:AcceptWindow", "Connections:MaxFirstRequestTime", "Connections:MaxWait", "Connections:MaxWaiting", "Upgrades:RatePerSecond",
            "Upgrades:RetryAfterMax", "MaxConcurrentConnections", "MaxConcurrentUpgradedConnections",
        ];
        foreach (var key in keys)
        {
            Assert.Contains(failures, f => f.StartsWith("Gateway:Admission:" + key + " ", StringComparison.Ordinal));
        }

        Assert.Equal(keys.Length, failures.Count);
    }

    [Fact]
    public void AdaptiveRate_BadValuesAreListed_AndOffIgnoresThem()
    {
        var options = new AdmissionOptions();
        var adaptive = options.Connections.Adaptive;
        adaptive.TargetDelay = TimeSpan.Zero;
        adaptive.MinRate = 0;
        adaptive.MaxRate = -1;
        adaptive.InitialRate = 5;
        adaptive.EstablishedTargetDelay = TimeSpan.FromSeconds(1); // over TargetDelay
        adaptive.EstablishedRequestRate = -1;
        options.Connections.Burst = 0;

        var failures = new AdmissionOptionsValidator().Validate(null, options).Failures!.ToList();

        foreach (var key in new[] { "Adaptive:TargetDelay", "Adaptive:MinRate", "Adaptive:MaxRate", "Adaptive:InitialRate", "Adaptive:EstablishedTargetDelay", "Adaptive:EstablishedRequestRate", "Burst" })
        {
            Assert.Contains(failures, f => f.StartsWith("Gateway:Admission:Connections:" + key + " ", StringComparison.Ordinal));
        }

        Assert.Equal(7, failures.Count);
        adaptive.Enabled = false;
        Assert.True(new AdmissionOptionsValidator().Validate(null, options).Succeeded);
    }
}
