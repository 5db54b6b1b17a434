using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Admission;
using YarpGateway.Configuration;
using YarpGateway.Cors;
using YarpGateway.Demo;
using YarpGateway.Discovery;
using YarpGateway.Endpoints;
using YarpGateway.ForwardedHeaders;
using YarpGateway.Health;
using YarpGateway.LoadBalancing;
using YarpGateway.Memory;
using YarpGateway.OutputCaching;
using YarpGateway.ProxyProtocol;
using YarpGateway.RateLimiting;
using YarpGateway.RequestFiltering;
using YarpGateway.Resilience;
using YarpGateway.ResponseBuffering;
using YarpGateway.Security;
using YarpGateway.SessionAffinity;
using YarpGateway.Status;
using YarpGateway.Telemetry;
using YarpGateway.WebSockets;

namespace YarpGateway;

/// <summary>Registers every gateway feature: the one place services are composed.</summary>
internal static class GatewayServiceCollectionExtensions
{
    /// <summary>Every <c>Gateway:*</c> options section, for <see cref="UnknownSettings"/>.</summary>
    internal static readonly UnknownSettings.Schema SettingsSchema = new(
        GatewaySection.Of<AdmissionOptions>(AdmissionOptions.SectionName),
        GatewaySection.Of<GatewayAuthorizationOptions>(GatewayAuthorizationOptions.SectionName),
        GatewaySection.Of<GatewayCorsOptions>(GatewayCorsOptions.SectionName),
        GatewaySection.Of<DemoBackendsOptions>(DemoBackendsOptions.SectionName),
        GatewaySection.Of<DiscoveryOptions>(DiscoveryOptions.SectionName),
        GatewaySection.Of<GatewayForwardedHeadersOptions>(GatewayForwardedHeadersOptions.SectionName),
        GatewaySection.Of<HealthOptions>(HealthOptions.SectionName),
        GatewaySection.Of<HttpsRedirectOptions>(HttpsRedirectOptions.SectionName),
        GatewaySection.Of<Http2Options>(Http2Options.SectionName),
        GatewaySection.Of<MemoryOptions>(MemoryOptions.SectionName),
        GatewaySection.Of<GatewayOutputCacheOptions>(GatewayOutputCacheOptions.SectionName),
        GatewaySection.Of<ProxyProtocolOptions>(ProxyProtocolOptions.SectionName),
        GatewaySection.Of<GatewayRateLimitingOptions>(GatewayRateLimitingOptions.SectionName),
        GatewaySection.Of<RequestFilteringOptions>(RequestFilteringOptions.SectionName),
        GatewaySection.Of<ResilienceOptions>(ResilienceOptions.SectionName),
        GatewaySection.Of<ShutdownOptions>(ShutdownOptions.SectionName),
        GatewaySection.Of<TelemetryOptions>(TelemetryOptions.SectionName),
        GatewaySection.Of<TransportOptions>(TransportOptions.SectionName),
        GatewaySection.Of<WebSocketProxyOptions>(WebSocketProxyOptions.SectionName));

    public static WebApplicationBuilder AddGateway(this WebApplicationBuilder builder)
    {
        if (ConfigFileLayering.AddConfigFile(builder.Configuration) is { } error)
        {
            throw new GatewayConfigurationException([error]);
        }

        LastGoodJsonConfigurationSource.KeepLastGoodOnReload(builder.Configuration);
        IndexedConfigurationSource.IndexTheOthers(builder.Configuration); // a walk of the configuration scans no provider's every key
        HostStartLog.Quiet(builder); // a failed start is one line (StartupErrors), not the host's stack trace too

        var services = builder.Services;
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ConfigMetrics>();
        services.AddSingleton<IKnownSeries>(sp => sp.GetRequiredService<ConfigMetrics>());

        // Endpoints: Proxy and Management from Kestrel:Endpoints.
        services.AddSingleton<GatewayListeners>();
        services.AddSingleton<CertificateReloader>(); // renewed certificate files served without a restart
        services.AddSingleton<CertificateMetrics>();
        services.AddSingleton<ProxyListenQueue>();
        services.AddSingleton<OpenConnectionLimit>(); // never more proxy connections than the open-file limit allows
        services.AddSingleton<BackendConnectionLimit>(); // nor backend connections (HTTP/2 clients' streams each hold one)
        services.AddSingleton<IConfigureOptions<KestrelServerOptions>, GatewayKestrelSetup>();
        services.AddOptions<TransportOptions>().Bind(builder.Configuration.GetSection(TransportOptions.SectionName));
        services.AddOptions<Http2Options>().Bind(builder.Configuration.GetSection(Http2Options.SectionName));
        services.AddSingleton<IValidateOptions<Http2Options>, Http2OptionsValidator>();
        services.AddOptions<HttpsRedirectOptions>().Bind(builder.Configuration.GetSection(HttpsRedirectOptions.SectionName));
        services.AddSingleton<IValidateOptions<HttpsRedirectOptions>, HttpsRedirectOptionsValidator>();
        services.AddSingleton<IValidateOptions<TransportOptions>, TransportOptionsValidator>();
        services.AddSingleton<IConfigureOptions<SocketTransportOptions>, SocketTransportSetup>();

        // Configuration: YARP reads only validated snapshots from our provider.
        services.AddReverseProxy();
        services.AddSessionAffinityDataProtectionOnFirstUse(); // no key ring made at start for affinity cookies nobody uses
        services.AddSessionAffinityLogThrottle(); // YARP logs what each request's affinity key lacked; once a second instead
        services.AddSingleton<IProxyConfigRule, SessionAffinityRule>(); // cookie and header names, cookie path and domain
        services.AddSingleton<GatewayConfigValidator>();
        services.AddSingleton<IProxyConfigRule, TransformValuesRule>(); // header names and values, route values transforms name
        services.AddSingleton<Yarp.ReverseProxy.Transforms.Builder.ITransformProvider, GrpcOverHttp11TransformProvider>(); // a gRPC route left on HTTP/1.1 is named in the log
        services.AddSingleton<SectionCopies>();
        services.AddSingleton<GatewayConfigProvider>();
        services.AddSingleton<IProxyConfigProvider>(sp => sp.GetRequiredService<GatewayConfigProvider>());
        services.AddSingleton<ProxyConfigStatus>();
        services.AddSingleton<IConfigChangeListener>(sp => sp.GetRequiredService<ProxyConfigStatus>());
        services.AddHostedService<ConfigReloadSignal>(); // SIGHUP reads the configuration again, as for nginx

        // Discovery: per-pod destinations from DNS (headless Services), opt-in per cluster.
        services.AddDnsDiscovery(builder.Configuration);

        // Load balancing: weighted policies, selectable per cluster by name.
        services.AddWeightedLoadBalancing();

        // Traffic counters first: they see every proxy connection, including those admission closes.
        services.AddSingleton<TrafficCounters>();
        services.AddSingleton<ShutdownHeartbeat>();
        services.AddSingleton<ProxyRequestFrame>();
        services.AddSingleton<ConnectionMetrics>();
        services.AddSingleton<IProxyConnectionMiddleware>(sp => sp.GetRequiredService<TrafficCounters>());

        // Request filtering: CONNECT, unknown extended-CONNECT protocols and TRACE refused before anything else.
        services.AddRequestFiltering(builder.Configuration);

        // Edge policies on ASP.NET Core's own middleware, named by routes: the trusted client address,
        // JWT bearer authentication and authorization, CORS, rate limits, output caching.
        services.AddGatewayForwardedHeaders(builder.Configuration);
        services.AddGatewaySecurity(builder.Configuration);
        services.AddGatewayCors(builder.Configuration);
        services.AddGatewayRateLimiting(builder.Configuration);
        services.AddGatewayOutputCache(builder.Configuration);
        services.AddSingleton<StartupChecks>();
        services.AddSingleton<RestartCheck>();
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<StartupOnlySections>(sp, (Func<List<ConfigError>>)sp.GetRequiredService<StartupChecks>().Find));
        services.AddSingleton(SettingsSchema);
        foreach (var section in SettingsSchema.Sections)
        {
            section.AddTimeSpanRangeValidator(services);
        }
        services.AddSingleton<UnknownSettings>();

        // Admission: concurrency limits, connection and upgrade throttling.
        services.AddAdmission(builder.Configuration);

        // The client's address from a TCP load balancer's PROXY protocol header, opt-in; after connection admission.
        services.AddProxyProtocol(builder.Configuration);

        // Open connections per client address (off by default), once the client's address is known: after the header.
        services.AddClientAddressConnectionLimit();

        // Resilience: timeouts, retries with a budget, outlier ejection.
        services.AddResilience(builder.Configuration);

        // WebSockets: bounded outbound buffers, slow-client policies, the 1001 close on drain.
        services.AddWebSocketRelay(builder.Configuration);

        // Response bodies: a slow client holds no copy buffer while the copy waits for it. After resilience,
        // so that its response transform sees whether the retry's held the body back.
        services.AddResponseBuffering();

        services.AddGatewayHealth(builder.Configuration);

        // Memory: one compacting collection that gives memory back after many clients left.
        services.AddMemoryReturn(builder.Configuration);

        // Status: /status.json on the management endpoint.
        services.AddStatus();

        // Telemetry: the meter provider, /metrics, the scheduler probe, the saturation log.
        services.AddGatewayTelemetry(builder.Configuration);

        services.AddOptions<DemoBackendsOptions>().Bind(builder.Configuration.GetSection(DemoBackendsOptions.SectionName));
        services.AddHostedService<DemoBackends>();
        return builder;
    }
}
