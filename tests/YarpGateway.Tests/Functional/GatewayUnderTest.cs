using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using System.Text.Json.Nodes;
using YarpGateway.Endpoints;
using YarpGateway.Telemetry;

namespace YarpGateway.Tests.Functional;

/// <summary>
/// The gateway, composed exactly as Program.cs composes it, listening on loopback port 0 for both
/// endpoints, with its routes in a temporary file passed as <c>--config</c>. Exposes the bound
/// ports, the captured log lines and the gateway's own counters.
/// </summary>
internal sealed class GatewayUnderTest : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly MeterListener _listener;
    private readonly ConcurrentDictionary<string, long> _counters = new();

    private GatewayUnderTest(WebApplication app, string configPath, CapturingLoggerProvider logs)
    {
        _app = app;
        ConfigPath = configPath;
        Logs = logs;
        var listeners = app.Services.GetRequiredService<GatewayListeners>();
        ProxyAddress = ToUri(listeners.ProxyEndPoints.Single());
        ManagementAddress = ToUri(listeners.ManagementEndPoints.Single());

        var meterFactory = app.Services.GetRequiredService<IMeterFactory>();
        _listener = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == YarpGateway.Telemetry.GatewayMeter.Name && ReferenceEquals(instrument.Meter.Scope, meterFactory))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (instrument.IsObservable)
            {
                _counters[Key(instrument, tags)] = value; // a total or a gauge, read when a test reads the counters
            }
            else
            {
                _counters.AddOrUpdate(Key(instrument, tags), value, (_, old) => old + value);
            }
        });

        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
        {
            if (instrument.IsObservable)
            {
                _counters[Key(instrument, tags)] = value; // a gauge, read when a test reads the counters
            }
        });

        // Histograms (and counters of seconds): the number of recordings per series.
        _listener.SetMeasurementEventCallback<double>((instrument, _, tags, _) =>
        {
            if (!instrument.IsObservable)
            {
                _counters.AddOrUpdate(Key(instrument, tags), 1, (_, old) => old + 1);
            }
        });
        _listener.Start();
    }

    // "name|tag=value|..." in the order the instrument reported its tags.
    private static string Key(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = instrument.Name;
        foreach (var tag in tags)
        {
            key += $"|{tag.Key}={tag.Value}";
        }

        return key;
    }

    public Uri ProxyAddress { get; }

    public Uri ManagementAddress { get; }

    public string ConfigPath { get; }

    public CapturingLoggerProvider Logs { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Sum of a gateway counter, e.g. <c>Counter("gateway.config.reloads|result=rejected")</c>; for a histogram, its number of
    /// recordings; for an observable counter or gauge, its value now.
    /// </summary>
    public long Counter(string key)
    {
        _listener.RecordObservableInstruments();
        return _counters.TryGetValue(key, out var value) ? value : 0;
    }

    /// <summary>Every series with a value, for failure messages.</summary>
    public string DescribeCounters(string prefix)
    {
        _listener.RecordObservableInstruments();
        return string.Join(", ", _counters.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(kv => $"{kv.Key}={kv.Value}"));
    }

    /// <summary>Sum of every series whose key starts with <paramref name="prefix"/> (any value of the remaining tags).</summary>
    public long CounterSum(string prefix)
    {
        _listener.RecordObservableInstruments();
        return _counters.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(kv => kv.Value);
    }

    public static Task<GatewayUnderTest> StartAsync(JsonNode config, params string[] extraArgs) => StartAsync(config, configureServices: null, extraArgs);

    /// <summary>As <see cref="StartAsync(JsonNode, string[])"/>, with services the test adds after the gateway's own.</summary>
    public static async Task<GatewayUnderTest> StartAsync(JsonNode config, Action<IServiceCollection>? configureServices, params string[] extraArgs)
    {
        var directory = Directory.CreateTempSubdirectory("yarpgateway-test-");
        var configPath = Path.Combine(directory.FullName, "gateway.json");
        ProxyConfigJson.WriteAtomically(configPath, config);

        string[] args =
        [
            "--config", configPath,
            "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0",
            "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0",
            "--Gateway:Shutdown:DrainDelay=00:00:00", // tests stop gateways all the time; drain tests set their own
            "--hostBuilder:reloadConfigOnChange=false", // as Program passes it: the gateway watches its files itself
            .. extraArgs,
        ];
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Testing",
        });
        var logs = new CapturingLoggerProvider();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.AddGateway();
        configureServices?.Invoke(builder.Services);

        var app = builder.Build();
        try
        {
            await app.UseGatewayAsync();
            await app.StartAsync();
        }
        catch
        {
            // A start that fails (what configuration tests expect) still lets go of its file watchers: inotify
            // instances are few (128 per user), and each undisposed gateway kept its own.
            await app.DisposeAsync();
            directory.Delete(recursive: true);
            throw;
        }

        return new GatewayUnderTest(app, configPath, logs);
    }

    public void WriteConfig(JsonNode config) => ProxyConfigJson.WriteAtomically(ConfigPath, config);

    public void WriteConfig(string text) => ProxyConfigJson.WriteAtomically(ConfigPath, text);

    /// <summary>Whether, within 10 s, the log says <paramref name="section"/> (<c>Gateway:Shutdown</c>) was reloaded (at least <paramref name="times"/> times): an edit of it applied.</summary>
    public Task<bool> SectionReloadedAsync(string section, int times = 1)
        => Eventually.TrueAsync(() => Logs.Lines.Count(l => l.Contains(section + " reloaded", StringComparison.Ordinal)) >= times, TimeSpan.FromSeconds(10));

    /// <summary>A client for the proxy endpoint, one connection pool per client.</summary>
    public HttpClient CreateProxyClient() => new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        BaseAddress = ProxyAddress,
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>A client for the proxy endpoint that speaks HTTP/2 with prior knowledge (h2c), one connection pool per client.</summary>
    public HttpClient CreateHttp2ProxyClient() => new(new SocketsHttpHandler())
    {
        BaseAddress = ProxyAddress,
        DefaultRequestVersion = System.Net.HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    public HttpClient CreateManagementClient() => new() { BaseAddress = ManagementAddress, Timeout = TimeSpan.FromSeconds(10) };

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(Path.GetDirectoryName(ConfigPath)!, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Uri ToUri(EndPoint endPoint) => endPoint switch
    {
        IPEndPoint ip => new Uri($"http://{ip}/"),
        _ => throw new InvalidOperationException($"Unexpected endpoint {endPoint}"),
    };
}
