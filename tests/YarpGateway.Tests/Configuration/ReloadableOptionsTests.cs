using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;
using YarpGateway.Resilience;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

public class ReloadableOptionsTests
{
    /// <summary>
    /// The configuration binder drops a list item or map entry whose value does not convert without a word (a list of
    /// 502 and "abc" bound as 502 alone): a reload with one is rejected with the value named, as at start.
    /// </summary>
    [Fact]
    public void AValueThatDoesNotConvert_InAList_IsRejected_NotDropped()
    {
        using var retrying = new RetryingOn502();
        var (configuration, logs, options) = (retrying.Configuration, retrying.Logs, retrying.Options);

        configuration["Gateway:Resilience:RetryStatusCodes:1"] = "abc";
        configuration.Reload();

        Assert.Equal([502], options.Current.RetryStatusCodes!);
        var rejected = Assert.Single(logs.Lines);
        Assert.Contains("[OptionsReloadRejected] Gateway:Resilience reload rejected; the previous settings stay in force. Gateway:Resilience:RetryStatusCodes:1: 'abc' is not", rejected, StringComparison.Ordinal);

        configuration["Gateway:Resilience:RetryStatusCodes:1"] = "503";
        configuration.Reload();

        Assert.Equal([502, 503], options.Current.RetryStatusCodes!);
    }

    /// <summary>
    /// A handler that throws on a reload is logged, the others still run, and nothing reaches the thread that saw the change
    /// (a timer's or a file watcher's, where it would end the process).
    /// </summary>
    [Fact]
    public void AHandlerThatThrows_IsLogged_AndTheOthersStillRun()
    {
        using var retrying = new RetryingOn502();
        var (configuration, logs, options) = (retrying.Configuration, retrying.Logs, retrying.Options);
        var after = 0;
        options.Changed += _ => throw new InvalidOperationException("a handler's bug");
        options.Changed += _ => after++;

        configuration["Gateway:Resilience:RetryStatusCodes:0"] = "503";
        configuration.Reload();

        Assert.Equal(1, after);
        Assert.Equal([503], options.Current.RetryStatusCodes!);
        Assert.Contains(logs.Lines, l => l.Contains("[OptionsApplyFailed] Gateway:Resilience reloaded, but", StringComparison.Ordinal) && l.Contains("a handler's bug", StringComparison.Ordinal));
        Assert.Contains(logs.Lines, l => l.Contains("[OptionsReloaded]", StringComparison.Ordinal));
    }

    /// <summary>A bad edit is said once, however often the file is read again; put back and saved again, it is said again.</summary>
    [Fact]
    public void TheSameBadEdit_IsSaidOnce_AndAgainAfterItWasPutBack()
    {
        using var retrying = new RetryingOn502();
        var (configuration, logs, options) = (retrying.Configuration, retrying.Logs, retrying.Options);

        configuration["Gateway:Resilience:RetryStatusCodes:1"] = "abc";
        configuration.Reload();
        configuration["Gateway:Resilience:RetryBaseDelay"] = "00:00:00.050";
        configuration.Reload();
        Assert.Single(logs.Lines);

        configuration["Gateway:Resilience:RetryStatusCodes:1"] = null;
        configuration["Gateway:Resilience:RetryBaseDelay"] = null;
        configuration.Reload();
        configuration["Gateway:Resilience:RetryStatusCodes:1"] = "abc";
        configuration.Reload();

        Assert.Equal(2, logs.Lines.Count(l => l.Contains("[OptionsReloadRejected]", StringComparison.Ordinal)));
        Assert.Equal([502], options.Current.RetryStatusCodes!);
    }

    /// <summary>
    /// What a reload's handlers derive (a rate limit, a CORS origin, a cache duration) is in force when the line says the
    /// section reloaded. The line came first before, and a reload test that sent its request on seeing it met the old
    /// rate limit now and then in CI.
    /// </summary>
    [Fact]
    public void TheReloadLine_IsWritten_AfterTheHandlersHaveApplied()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Gateway:Resilience:MaxRetries"] = "1",
        }).Build();
        var applied = 0;
        var logs = new ObservingLoggerProvider("OptionsReloaded", () => Volatile.Read(ref applied));
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        using var options = Resilience(configuration, loggers);
        options.Changed += _ => Interlocked.Increment(ref applied);

        configuration["Gateway:Resilience:MaxRetries"] = "2";
        configuration.Reload();
        configuration["Gateway:Resilience:MaxRetries"] = "3";
        configuration.Reload();

        Assert.Equal([1, 2], logs.Seen);
    }

    /// <summary>Gateway:Resilience with <c>RetryStatusCodes: [502]</c>, reloaded as the gateway reloads it, its log captured.</summary>
    private sealed class RetryingOn502 : IDisposable
    {
        private readonly ILoggerFactory _loggers;

        public RetryingOn502()
        {
            Configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Gateway:Resilience:RetryStatusCodes:0"] = "502",
            }).Build();
            _loggers = LoggerFactory.Create(b => b.AddProvider(Logs));
            Options = Resilience(Configuration, _loggers);
        }

        public IConfigurationRoot Configuration { get; }

        public CapturingLoggerProvider Logs { get; } = new();

        public ReloadableOptions<ResilienceOptions> Options { get; }

        public void Dispose()
        {
            Options.Dispose();
            _loggers.Dispose();
        }
    }

    // Gateway:Resilience of the configuration, reloaded as the gateway reloads it.
    private static ReloadableOptions<ResilienceOptions> Resilience(IConfigurationRoot configuration, ILoggerFactory loggers)
        => new(
            new OptionsFactory<ResilienceOptions>([new ConfigureFromConfigurationOptions<ResilienceOptions>(configuration.GetSection(ResilienceOptions.SectionName))], []),
            configuration, Telemetry.TestMetrics.Config(), loggers, ResilienceOptions.SectionName);
}
