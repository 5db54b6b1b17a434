using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Primitives;
using YarpGateway.Configuration;
using YarpGateway.Tests.Functional;

namespace YarpGateway.Tests.Configuration;

/// <summary>
/// A file read again while a reload is reading the configuration: SIGHUP reads each file in turn and each read starts
/// a reload, and the file watcher may read the same file at the same time. A reload's reads then mixed the old
/// contents with the new: tried with 3,000 routes, a route added with a SIGHUP was logged as "only the case of a key"
/// every time, and the next change's line named it again. The proxy configuration is now read again until two reads
/// agree; Gateway options and the start-up-only sections leave it to the reload the second read starts.
/// </summary>
public class ReadWhileReloadingTests
{
    private const string Before = """
        { "ReverseProxy": { "Routes": { "all": { "ClusterId": "c", "Match": { "Path": "/{**x}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """;

    private const string Between = """
        { "ReverseProxy": { "Routes": { "all": { "ClusterId": "c", "Match": { "Path": "/{**x}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:2" } } } } } }
        """;

    private const string After = """
        { "ReverseProxy": { "Routes": { "all": { "ClusterId": "c", "Match": { "Path": "/{**x}" } },
                                        "extra": { "ClusterId": "c", "Match": { "Path": "/extra/{**x}" } } },
          "Clusters": { "c": { "Destinations": { "d": { "Address": "http://127.0.0.1:1" } } } } } }
        """;

    [Fact]
    public async Task AProxyConfigurationChangedWhileAReloadReadsIt_IsReadAgain_AndLoggedWithWhatChanged()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory, EnvironmentName = "Testing" });
        builder.AddGateway();
        await using var app = builder.Build();
        var configuration = new ChangingConfiguration(ProxyConfigReaderTests.Json(Before), "ReverseProxy");
        var logs = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        using var provider = new GatewayConfigProvider(configuration, new SectionCopies(configuration), app.Services.GetRequiredService<GatewayConfigValidator>(),
            Telemetry.TestMetrics.Config(), loggers.CreateLogger<GatewayConfigProvider>());
        await provider.InitializeAsync(CancellationToken.None);

        // The reload's first read sees the first save, the rest of it the second.
        configuration.ChangeTo(ProxyConfigReaderTests.Json(Between), afterReads: 0);
        configuration.ChangeTo(ProxyConfigReaderTests.Json(After), afterReads: 1);
        await provider.ReloadAsync(CancellationToken.None);

        Assert.Equal(2, provider.Revision); // read again, whole, by the same reload
        Assert.Equal(2, provider.GetConfig().Routes.Count);
        await provider.ReloadAsync(CancellationToken.None); // the reload the second save's change event starts: nothing more to do
        var reloaded = Assert.Single(logs.Lines, l => l.Contains("[ConfigReloaded]", StringComparison.Ordinal));
        Assert.EndsWith("Changed: Routes:extra: added.", reloaded, StringComparison.Ordinal);
    }

    [Fact]
    public void GatewayOptionsChangedWhileAReloadReadsThem_AreLoggedWithWhatChanged_Once()
    {
        var configuration = new ChangingConfiguration(Settings("100"), "Gateway:Admission");
        var logs = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        using var options = new ReloadableOptions<YarpGateway.Admission.AdmissionOptions>(
            new Microsoft.Extensions.Options.OptionsFactory<YarpGateway.Admission.AdmissionOptions>([], []), configuration, Telemetry.TestMetrics.Config(), loggers, "Gateway:Admission");

        // Two saves in quick succession: the reload's first read sees the first, the rest of it the second.
        configuration.ChangeTo(Settings("50"), afterReads: 0);
        configuration.ChangeTo(Settings("25"), afterReads: 1);
        configuration.RaiseChanged();
        configuration.RaiseChanged();

        var applied = Assert.Single(logs.Lines, l => l.Contains("Gateway:Admission", StringComparison.Ordinal)); // not a second "only the case of a key"
        Assert.Contains("Global:MaxConcurrency: '100' -> '25'", applied, StringComparison.Ordinal);
    }

    [Fact]
    public void AStartupOnlySectionChangedWhileItIsRead_IsLoggedWithWhatChanged_Once()
    {
        var configuration = new ChangingConfiguration(new ConfigurationBuilder().AddInMemoryCollection([]).Build(), "Gateway:Transport");
        var logs = new CapturingLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        using var sections = new StartupOnlySections(configuration, () => [], loggers.CreateLogger<StartupOnlySections>());

        configuration.ChangeTo(new ConfigurationBuilder().AddInMemoryCollection([new("Gateway:Transport:Backlog", "8192")]).Build(), afterReads: 0);
        configuration.ChangeTo(new ConfigurationBuilder().AddInMemoryCollection([new("Gateway:Transport:Backlog", "4096")]).Build(), afterReads: 1);
        configuration.RaiseChanged();
        configuration.RaiseChanged();

        var line = Assert.Single(logs.Lines); // not a second one naming the section alone
        Assert.EndsWith("Changed: Backlog: added ('4096').", line, StringComparison.Ordinal);
    }

    private static IConfigurationRoot Settings(string maxConcurrency)
        => new ConfigurationBuilder().AddInMemoryCollection([new("Gateway:Admission:Global:MaxConcurrency", maxConcurrency)]).Build();

    /// <summary>
    /// A configuration whose contents change part-way through a reload: each change given to <see cref="ChangeTo"/>
    /// comes, in order, after that many more reads of the watched section (a read is one <see cref="GetSection"/> of it).
    /// </summary>
    private sealed class ChangingConfiguration(IConfiguration current, string watched) : IConfiguration
    {
        private readonly Queue<(IConfiguration Next, int AfterReads)> _changes = new();
        private ConfigurationReloadToken _token = new();
        private int _reads;

        public void ChangeTo(IConfiguration next, int afterReads)
        {
            if (_changes.Count == 0)
            {
                _reads = 0; // counted from now
            }

            _changes.Enqueue((next, afterReads));
        }

        public void RaiseChanged() => Interlocked.Exchange(ref _token, new ConfigurationReloadToken()).OnReload();

        public string? this[string key]
        {
            get => current[key];
            set => current[key] = value;
        }

        public IConfigurationSection GetSection(string key)
        {
            if (string.Equals(key, watched, StringComparison.OrdinalIgnoreCase))
            {
                while (_changes.TryPeek(out var change) && change.AfterReads == _reads)
                {
                    current = _changes.Dequeue().Next;
                    _reads = 0;
                }

                _reads++;
            }

            return current.GetSection(key);
        }

        public IEnumerable<IConfigurationSection> GetChildren() => current.GetChildren();

        public IChangeToken GetReloadToken() => _token;
    }
}
