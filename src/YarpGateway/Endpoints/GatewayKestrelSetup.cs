using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace YarpGateway.Endpoints;

/// <summary>
/// Binds the two named endpoints from <c>Kestrel:Endpoints</c> (standard Kestrel configuration), and the optional
/// <c>HttpsRedirect</c> one,
/// tags their connections, and turns on h2c prior knowledge for a cleartext Proxy endpoint that
/// allows both HTTP/1.1 and HTTP/2. Endpoint changes need a restart: Kestrel's own reload of its
/// section is turned off, because a config file saved half-written reads as empty and would
/// unbind both ports.
/// </summary>
internal sealed partial class GatewayKestrelSetup(IConfiguration configuration, GatewayListeners listeners, IEnumerable<IProxyConnectionMiddleware> proxyMiddleware,
    IOptions<SocketTransportOptions> transport, ShutdownHeartbeat shutdownHeartbeat, CertificateReloader certificates, ILogger<GatewayKestrelSetup> logger) : IConfigureOptions<KestrelServerOptions>
{
    public const string ProxyEndpointName = "Proxy";
    public const string ManagementEndpointName = "Management";
    public const string HttpsRedirectEndpointName = "HttpsRedirect";
    public const string EndpointsSection = "Kestrel:Endpoints";
    public const string LimitsSection = "Kestrel:Limits";

    /// <summary>Kestrel limits the gateway sets from its own admission settings; set under <c>Kestrel:Limits</c> they are an error.</summary>
    private static readonly string[] AdmissionOwnedLimits = [nameof(KestrelServerLimits.MaxConcurrentConnections), nameof(KestrelServerLimits.MaxConcurrentUpgradedConnections)];

    public void Configure(KestrelServerOptions options)
    {
        options.AddServerHeader = false;

        // Kestrel's own loader reads Endpoints, Certificates and EndpointDefaults, not Limits: bound here,
        // so that Kestrel:Limits:MaxRequestBodySize, KeepAliveTimeout and the rest do what they say. A value
        // that does not convert, or one out of Kestrel's range, is left out (this runs while the host is built, where the
        // binder's exception would end the start with a stack trace); Validate lists every such value at start-up.
        var limits = configuration.GetSection(LimitsSection);
        // Every check Validate makes of them, the data rates' included: the binder builds a MinDataRate through its
        // constructor, and a BytesPerSecond or GracePeriod that does not convert ended the start with an unhandled exception
        // when it was the only bad value.
        var bindable = !LimitsErrors(limits).Any();
        if (bindable)
        {
            limits.Bind(options.Limits);
            options.Limits.MinRequestBodyDataRate = DataRate(limits.GetSection(nameof(KestrelServerLimits.MinRequestBodyDataRate)), options.Limits.MinRequestBodyDataRate);
            options.Limits.MinResponseDataRate = DataRate(limits.GetSection(nameof(KestrelServerLimits.MinResponseDataRate)), options.Limits.MinResponseDataRate);
        }

        SetHttp2Limits(options.Limits.Http2, bindable ? limits.GetSection("Http2") : new ConfigurationBuilder().Build());

        // h2c requests carry their scheme in :scheme; Http2PriorKnowledge's request check keeps it "http".
        options.AllowAlternateSchemes = true;
        var firstBytesTimeout = options.Limits.RequestHeadersTimeout;

        options.Configure(configuration.GetSection("Kestrel"), reloadOnChange: false)
            .Endpoint(ProxyEndpointName, endpoint =>
            {
                var listen = endpoint.ListenOptions;
                listeners.Add(GatewayEndpointKind.Proxy, listen);
                WatchCertificate(ProxyEndpointName, endpoint);
                // First, so that the features' middleware log and check the address as the requests will see it.
                listen.Use(next => connection =>
                {
                    ClientEndPoint.UseIPv4ForIPv4Clients(connection);
                    return next(connection);
                });
                foreach (var middleware in proxyMiddleware)
                {
                    listen.Use(next => middleware.Wrap(next, options.Limits));
                }

                listen.Use(next => connection =>
                {
                    GatewayEndpointTag.Set(connection, GatewayEndpointKind.Proxy);
                    return next(connection);
                });

                if (!endpoint.IsHttps && listen.Protocols.HasFlag(HttpProtocols.Http1) && listen.Protocols.HasFlag(HttpProtocols.Http2))
                {
                    listen.Use(Http2PriorKnowledge.Middleware(firstBytesTimeout, batchSends: transport.Value.UnsafePreferInlineScheduling));

                    // Kestrel warns that HTTP/2 is off on a cleartext endpoint whose Protocols were set
                    // explicitly; with the sniffing above that is not so. Unset, the warning never comes.
                    if (endpoint.ConfigSection["Protocols"] is not null)
                    {
                        Log.CleartextHttp2KestrelWarns(logger, endpoint.ConfigSection["Url"]);
                    }
                    else
                    {
                        Log.CleartextHttp2(logger, endpoint.ConfigSection["Url"]);
                    }
                }
                else if (!endpoint.IsHttps && listen.Protocols == HttpProtocols.Http2)
                {
                    listen.Use(Http2PriorKnowledge.Http2OnlyMarker);
                }

                listen.Use(shutdownHeartbeat.Middleware(everyConnection: endpoint.IsHttps));
            })
            .Endpoint(ManagementEndpointName, endpoint =>
            {
                listeners.Add(GatewayEndpointKind.Management, endpoint.ListenOptions);
                WatchCertificate(ManagementEndpointName, endpoint);
                endpoint.ListenOptions.Use(next => connection =>
                {
                    GatewayEndpointTag.Set(connection, GatewayEndpointKind.Management);
                    return next(connection);
                });
            })
            .Endpoint(HttpsRedirectEndpointName, endpoint =>
            {
                listeners.Add(GatewayEndpointKind.HttpsRedirect, endpoint.ListenOptions);
                endpoint.ListenOptions.Use(HttpsRedirect.ConnectionCap(IntOr(HttpsRedirectOptions.SectionName + ":MaxConnections", new HttpsRedirectOptions().MaxConnections)));
                endpoint.ListenOptions.Use(next => connection =>
                {
                    GatewayEndpointTag.Set(connection, GatewayEndpointKind.HttpsRedirect);
                    return next(connection);
                });
                Log.HttpsRedirectServed(logger, endpoint.ConfigSection["Url"], HttpsRedirect.AuthoritySuffix(IntOr(HttpsRedirectOptions.SectionName + ":Port", new HttpsRedirectOptions().Port)));
            });
    }

    // A value that does not convert is start-up's error to list (StartupChecks); the binder's exception here would end the
    // start with a stack trace.
    private int IntOr(string key, int fallback)
        => int.TryParse(configuration[key], System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : fallback;

    /// <summary>An HTTPS endpoint's certificate files, watched for renewal (not with SNI, whose certificates Kestrel picks per name).</summary>
    private void WatchCertificate(string name, Microsoft.AspNetCore.Server.Kestrel.EndpointConfiguration endpoint)
    {
        var sni = endpoint.ConfigSection.GetSection("Sni");
        if (endpoint.IsHttps && sni.GetChildren().Select(entry => entry.Key).ToList() is { Count: > 0 } names && !names.Contains("*"))
        {
            // Kestrel refuses such a handshake and says so only at Debug: every client of another name, and any that sends
            // none (one that connects by IP address, many health checkers), failed without a line (tried).
            Log.SniWithoutFallback(logger, name, string.Join(", ", names.Select(n => $"'{n}'")));
        }

        if (endpoint.IsHttps && CertificateFiles.SectionOf(endpoint.ConfigSection, configuration) is { } certificate)
        {
            certificates.Watch(name, endpoint.HttpsOptions, certificate);
        }
    }

    /// <summary>
    /// Kestrel's HTTP/2 limits, set here on purpose rather than left to whatever the framework's
    /// defaults become; <c>Kestrel:Limits:Http2:*</c> keys override each. Most equal Kestrel's own
    /// defaults today; keep-alive pings are on (Kestrel's are off), so a peer that vanished without a
    /// FIN does not keep its streams and buffers for ever.
    /// </summary>
    internal static void SetHttp2Limits(Http2Limits http2, IConfiguration overrides)
    {
        http2.MaxStreamsPerConnection = 100;
        http2.HeaderTableSize = 4096;
        http2.MaxFrameSize = 16 * 1024;
        http2.MaxRequestHeaderFieldSize = 16 * 1024;
        http2.InitialConnectionWindowSize = 1024 * 1024;
        http2.InitialStreamWindowSize = 768 * 1024;
        http2.KeepAlivePingDelay = TimeSpan.FromMinutes(1);
        http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        overrides.Bind(http2);
    }

    /// <summary>
    /// Kestrel's <see cref="MinDataRate"/> from <c>BytesPerSecond</c> and <c>GracePeriod</c> under <paramref name="section"/>
    /// (<c>Kestrel:Limits:MinRequestBodyDataRate</c> or <c>MinResponseDataRate</c>), which the binder cannot make (the type has
    /// no setters): either left out keeps <paramref name="current"/>'s, and 0 bytes a second turns the minimum off. A value
    /// that does not convert keeps <paramref name="current"/> (this runs while the host is built); <see cref="Validate"/> lists it.
    /// </summary>
    internal static MinDataRate? DataRate(IConfigurationSection section, MinDataRate? current)
    {
        if (!section.Exists() || DataRateErrors(section).Any())
        {
            return current;
        }

        var bytes = section[nameof(MinDataRate.BytesPerSecond)] is { } text ? double.Parse(text, System.Globalization.CultureInfo.InvariantCulture) : current?.BytesPerSecond ?? 240;
        var grace = section[nameof(MinDataRate.GracePeriod)] is { } span ? TimeSpan.Parse(span, System.Globalization.CultureInfo.InvariantCulture) : current?.GracePeriod ?? TimeSpan.FromSeconds(5);
        return bytes == 0 ? null : new MinDataRate(bytes, grace);
    }

    // Kestrel checks the rates once a second, and refuses a grace period of a second or less.
    /// <summary>Every <c>Kestrel:Limits</c> value that does not convert, a data rate that is not one, and a limit out of Kestrel's range.</summary>
    private static IEnumerable<Configuration.ConfigError> LimitsErrors(IConfigurationSection limits)
    {
        var unconvertible = Configuration.OptionsBindingErrors.Find<KestrelServerLimits>(limits, []);
        var reported = unconvertible.Select(error => error.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var each = unconvertible
            .Concat(DataRateErrors(limits.GetSection(nameof(KestrelServerLimits.MinRequestBodyDataRate))))
            .Concat(DataRateErrors(limits.GetSection(nameof(KestrelServerLimits.MinResponseDataRate))))
            .Concat(LimitRangeErrors(limits).Where(error => !reported.Contains(error.Key))) // "'x' is not a whole number" says it all
            .ToList();
        return each.Count > 0 ? each : BufferSizeErrors(limits).Concat(TooSmallErrors(limits));
    }

    /// <summary>
    /// The smallest request line, headers' total size and header count the gateway accepts in <c>Kestrel:Limits</c>: a
    /// request Kestrel refuses over them gets 400, 414 or 431 before the gateway sees it, Kubernetes' probes included.
    /// A Kubernetes probe's request line is about 30 bytes, its headers about 90 bytes in 4 headers (tried:
    /// <c>MaxRequestHeadersTotalSize</c> 60 refused every probe with 431, the pod was never ready, and it passed
    /// <c>--check</c>); a browser sends 500 to 2,000 bytes in 10 to 15. The floors leave a probe room, and catch a size
    /// written in KiB (<c>"MaxRequestHeadersTotalSize": 32</c> for 32 KiB). Over HTTP/2's limit on one header (the gateway
    /// sets 16 KiB) Kestrel closes the connection: a browser's <c>user-agent</c> is 100 to 200 bytes.
    /// </summary>
    internal static readonly (string Name, long Floor, string Unit, string Refuses)[] Floors =
    [
        (nameof(KestrelServerLimits.MaxRequestLineSize), 128, "bytes", ProbesRefused),
        (nameof(KestrelServerLimits.MaxRequestHeadersTotalSize), 512, "bytes", ProbesRefused),
        (nameof(KestrelServerLimits.MaxRequestHeaderCount), 8, "headers", ProbesRefused),
        ($"{nameof(KestrelServerLimits.Http2)}:{nameof(Http2Limits.MaxRequestHeaderFieldSize)}", 512, "bytes",
            "Kestrel would close the HTTP/2 connection of a request with a longer header (its encoded size; a browser's user-agent is 100 to 200 bytes, a cookie often several KiB) before the gateway sees it."),
    ];

    private const string ProbesRefused = "Kestrel would answer 400, 414 or 431 to ordinary requests before the gateway sees them, Kubernetes' probes included (a probe's request line is about 30 bytes, its headers about 90 bytes in 4), so the pod would never be ready.";

    /// <summary>A <see cref="Floors"/> limit set below its floor, with what it would refuse and how to write the size meant.</summary>
    private static IEnumerable<Configuration.ConfigError> TooSmallErrors(IConfigurationSection section)
    {
        foreach (var (name, floor, unit, refuses) in Floors)
        {
            if (section[name] is { } text && long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value) && value < floor)
            {
                var meant = unit == "bytes" ? $" The value is in bytes: {value * 1024} is {value} KiB." : string.Empty;
                yield return new Configuration.ConfigError($"{LimitsSection}:{name}", $"{value} {unit} is less than {floor}, the least the gateway accepts: {refuses}{meant}");
            }
        }
    }

    /// <summary>
    /// <c>MaxRequestBufferSize</c> below the request line's or the headers' limit, which Kestrel refuses when it starts
    /// (tried: <c>MaxRequestBufferSize</c> 10 passed <c>--check</c>, and the start ended with an unhandled exception and
    /// exit 134). Read from the section bound over Kestrel's defaults, so that each side may be a default.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2026", Justification = Configuration.KeptForReflection.Justification)]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("AOT", "IL3050", Justification = Configuration.KeptForReflection.Justification)]
    private static IEnumerable<Configuration.ConfigError> BufferSizeErrors(IConfigurationSection section)
    {
        var limits = new KestrelServerLimits();
        section.Bind(limits);
        if (limits.MaxRequestBufferSize is not { } buffer)
        {
            yield break; // no limit: anything fits
        }

        var above = new[] { (Name: nameof(KestrelServerLimits.MaxRequestLineSize), Size: (long)limits.MaxRequestLineSize), (Name: nameof(KestrelServerLimits.MaxRequestHeadersTotalSize), Size: limits.MaxRequestHeadersTotalSize) }
            .Where(limit => buffer < limit.Size).ToList();
        if (above.Count > 0)
        {
            var lowerable = above.Where(limit => buffer >= Floors.First(floor => floor.Name == limit.Name).Floor).Select(limit => limit.Name).ToList(); // not below TooSmallErrors' floors
            var which = string.Join(" and ", above.Select(limit => $"{limit.Name} ({limit.Size}{(section[limit.Name] is null ? ", Kestrel's default" : string.Empty)})"));
            yield return new Configuration.ConfigError($"{LimitsSection}:{nameof(KestrelServerLimits.MaxRequestBufferSize)}",
                $"{buffer} bytes{(section[nameof(KestrelServerLimits.MaxRequestBufferSize)] is null ? " (Kestrel's default)" : string.Empty)} is less than {which}, and Kestrel refuses to start with a request buffer smaller than a request line or its headers may be: raise it to at least {above.Max(limit => limit.Size)}{(lowerable.Count > 0 ? $", or lower {string.Join(" and ", lowerable)}" : string.Empty)}.");
        }
    }

    private static IEnumerable<Configuration.ConfigError> DataRateErrors(IConfigurationSection section)
    {
        var bytes = section[nameof(MinDataRate.BytesPerSecond)];
        if (bytes is not null && !(double.TryParse(bytes, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= 0 && double.IsFinite(value)))
        {
            yield return new Configuration.ConfigError(section.Path + ":" + nameof(MinDataRate.BytesPerSecond), $"must be a number of bytes a second, 0 or more (0 turns the minimum off); got '{bytes}'.");
        }

        var grace = section[nameof(MinDataRate.GracePeriod)];
        if (grace is not null && Configuration.TimeSpans.IsDaysAlone(grace))
        {
            yield return new Configuration.ConfigError(section.Path + ":" + nameof(MinDataRate.GracePeriod), Configuration.TimeSpans.Refusal(grace, "a time span"));
        }
        else if (grace is not null && !(TimeSpan.TryParse(grace, System.Globalization.CultureInfo.InvariantCulture, out var span) && span > TimeSpan.FromSeconds(1)))
        {
            yield return new Configuration.ConfigError(section.Path + ":" + nameof(MinDataRate.GracePeriod), $"must be a time span of more than 1 s (Kestrel checks once a second), e.g. 00:00:05; got '{grace}'.");
        }
    }

    /// <summary>
    /// Start-up errors when either named endpoint is missing, or both would listen on the same port; for every
    /// <c>Kestrel:Limits</c> value that does not convert (the binder would stop the start at the first, with a stack
    /// trace), and for the limits <c>Gateway:Admission</c> sets.
    /// </summary>
    public static IEnumerable<Configuration.ConfigError> Validate(IConfiguration configuration)
    {
        var limits = configuration.GetSection(LimitsSection);
        foreach (var error in LimitsErrors(limits))
        {
            yield return error;
        }

        var defaults = configuration.GetSection(EndpointDefaultsSection);
        foreach (var endpoint in configuration.GetSection(EndpointsSection).GetChildren())
        {
            if (!endpoint.Key.Equals(ProxyEndpointName, StringComparison.OrdinalIgnoreCase) && !endpoint.Key.Equals(ManagementEndpointName, StringComparison.OrdinalIgnoreCase)
                && !endpoint.Key.Equals(HttpsRedirectEndpointName, StringComparison.OrdinalIgnoreCase))
            {
                // Kestrel bound it and proxied every request there, past what only the Proxy endpoint's connections go
                // through (tried: "Extra" on :9000 answered proxied requests, /healthz/live included, without a word).
                yield return new Configuration.ConfigError(endpoint.Path,
                    $"the gateway serves two endpoints, {ProxyEndpointName} (proxied traffic) and {ManagementEndpointName} (probes, /metrics, /status), and optionally {HttpsRedirectEndpointName} (plain HTTP redirected to https); Kestrel would listen on '{endpoint["Url"]}' for '{endpoint.Key}' "
                    + "and proxy requests there past connection admission, the open-connection limits and the PROXY protocol, which only the Proxy endpoint's connections go through. Remove it; for TLS, give the Proxy endpoint an https:// Url.");
            }

            foreach (var error in EndpointErrors(endpoint, defaults))
            {
                yield return error;
            }
        }

        foreach (var error in EndpointErrors(defaults, defaults: null))
        {
            yield return error;
        }

        foreach (var name in AdmissionOwnedLimits)
        {
            if (limits[name] is not null)
            {
                yield return new Configuration.ConfigError($"{LimitsSection}:{name}", $"the gateway sets it from Gateway:Admission:{name}; set that instead.");
            }
        }

        foreach (var name in new[] { ProxyEndpointName, ManagementEndpointName })
        {
            var key = $"{EndpointsSection}:{name}:Url";
            if (string.IsNullOrWhiteSpace(configuration[key]))
            {
                yield return new Configuration.ConfigError(key, $"the {name} endpoint needs a URL, e.g. http://*:{(name == ProxyEndpointName ? 8080 : 8081)}.");
            }
        }

        // Kestrel would report the second bind as "address already in use", which reads as another
        // process holding the port.
        var proxy = configuration[$"{EndpointsSection}:{ProxyEndpointName}:Url"];
        var management = configuration[$"{EndpointsSection}:{ManagementEndpointName}:Url"];
        if (SamePort(proxy, management) is { } port)
        {
            yield return new Configuration.ConfigError($"{EndpointsSection}:{ManagementEndpointName}:Url",
                $"'{management}' is the Proxy endpoint's port too ({port}, '{proxy}'): the two endpoints need ports of their own.");
        }

        foreach (var error in HttpsRedirectErrors(configuration, proxy, management))
        {
            yield return error;
        }
    }

    /// <summary>
    /// The optional <c>HttpsRedirect</c> endpoint answers plain HTTP (an https:// Url would need a certificate to say "use
    /// https"), only beside a Proxy endpoint that serves https (else it would send every client to an address nothing
    /// answers), and on a port of its own.
    /// </summary>
    private static IEnumerable<Configuration.ConfigError> HttpsRedirectErrors(IConfiguration configuration, string? proxy, string? management)
    {
        var section = configuration.GetSection($"{EndpointsSection}:{HttpsRedirectEndpointName}");
        if (!section.Exists())
        {
            yield break;
        }

        var key = section.Path + ":Url";
        var url = section["Url"];
        if (string.IsNullOrWhiteSpace(url))
        {
            yield return new Configuration.ConfigError(key, $"the {HttpsRedirectEndpointName} endpoint needs a URL, e.g. http://*:8080 (or remove the section).");
            yield break;
        }

        if (!url.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            yield return new Configuration.ConfigError(key, $"'{url}': the {HttpsRedirectEndpointName} endpoint answers plain HTTP, to send it to https; give it an http:// Url.");
        }

        if (proxy is not null && !proxy.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            yield return new Configuration.ConfigError(key, $"the Proxy endpoint ('{proxy}') does not serve https, so every request would be sent to an address nothing answers; give the Proxy endpoint an https:// Url, or remove the {HttpsRedirectEndpointName} endpoint (behind a load balancer that ends TLS, the load balancer redirects).");
        }

        foreach (var (other, name) in new[] { (proxy, ProxyEndpointName), (management, ManagementEndpointName) })
        {
            if (SamePort(other, url) is { } port)
            {
                yield return new Configuration.ConfigError(key, $"'{url}' is the {name} endpoint's port too ({port}, '{other}'): each endpoint needs a port of its own.");
            }
        }
    }

    /// <summary>
    /// Each <c>Kestrel:Limits</c> value set on its own, as Kestrel sets it: a value its setter refuses
    /// (<c>MaxRequestHeaderCount</c> 0, <c>Http2:InitialConnectionWindowSize</c> 1, <c>Http2:MaxStreamsPerConnection</c> 0)
    /// ended the process at start with an unhandled exception and exit 134 (tried).
    /// </summary>
    private static IEnumerable<Configuration.ConfigError> LimitRangeErrors(IConfigurationSection limits)
    {
        foreach (var (key, value) in limits.AsEnumerable(makePathsRelative: true))
        {
            if (value is null || key.Length == 0 || key.StartsWith(nameof(KestrelServerLimits.MinRequestBodyDataRate), StringComparison.OrdinalIgnoreCase)
                || key.StartsWith(nameof(KestrelServerLimits.MinResponseDataRate), StringComparison.OrdinalIgnoreCase))
            {
                continue; // a section, or a data rate (DataRateErrors)
            }

            string? refused = null;
            try
            {
                new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build().Bind(new KestrelServerLimits());
            }
            catch (Exception ex) when ((ex as ArgumentException ?? ex.InnerException) is ArgumentException inner
                && ex is ArgumentException or System.Reflection.TargetInvocationException or InvalidOperationException) // a native AOT build's binder calls the setter itself
            {
                refused = inner.Message.Split(" (Parameter '")[0];
            }
            catch (InvalidOperationException)
            {
                // a value that does not convert: OptionsBindingErrors names it
            }

            if (refused is not null)
            {
                yield return new Configuration.ConfigError(ConfigurationPath.Combine(LimitsSection, key), $"'{value}' is out of Kestrel's range: {refused}");
            }
        }
    }

    /// <summary>
    /// An endpoint's <c>Url</c> as Kestrel binds it and its <c>Protocols</c> as Kestrel reads them (what they serve:
    /// <see cref="ProtocolsErrors"/>). Tried: a URL that is
    /// not one (<c>nonsense</c>), one with a path (<c>http://127.0.0.1:8080/api</c>), a scheme Kestrel does not serve
    /// (<c>htp://</c>) or a port past 65535
    /// ended the process at start with an unhandled exception and exit 134; a protocol Kestrel does not know
    /// (<c>Http5</c>) was ignored without a word, as was a <c>ClientCertificateMode</c> it does not know; HTTPS settings on an
    /// http:// endpoint ended the start too. <c>Kestrel:EndpointDefaults</c> is read the same way (with
    /// <paramref name="defaults"/> null: for an endpoint, the defaults whose <c>Protocols</c> apply where it sets none).
    /// </summary>
    private static IEnumerable<Configuration.ConfigError> EndpointErrors(IConfigurationSection endpoint, IConfigurationSection? defaults)
    {
        var urlKey = ConfigurationPath.Combine(endpoint.Path, "Url");
        var url = endpoint["Url"];
        BindingAddress? address = null;
        if (!string.IsNullOrWhiteSpace(url))
        {
            try
            {
                address = BindingAddress.Parse(url);
            }
            catch (FormatException)
            {
            }

            if (address is null)
            {
                yield return new Configuration.ConfigError(urlKey, $"'{url}' is not a URL Kestrel can listen on, such as http://*:8080, http://127.0.0.1:8080 or https://*:8443.");
            }
            else if (address.PathBase.Length > 0)
            {
                yield return new Configuration.ConfigError(urlKey, $"'{url}' has a path ('{address.PathBase}'): an endpoint listens on an address and port only; match paths with routes.");
            }
            else if (!string.Equals(address.Scheme, "http", StringComparison.OrdinalIgnoreCase) && !string.Equals(address.Scheme, "https", StringComparison.OrdinalIgnoreCase))
            {
                yield return new Configuration.ConfigError(urlKey, $"'{url}' has the scheme '{address.Scheme}': Kestrel listens on http:// and https:// only.");
            }
            else if (!address.IsUnixPipe && !address.IsNamedPipe && address.Port is < 0 or > System.Net.IPEndPoint.MaxPort)
            {
                yield return new Configuration.ConfigError(urlKey, $"'{url}' has the port {address.Port}: a port is 0 to 65535 (0 takes any free one).");
            }
        }

        var isHttp = address is not null && !string.Equals(address.Scheme, "https", StringComparison.OrdinalIgnoreCase);
        foreach (var httpsOnly in HttpsOnlySettings.Where(name => isHttp && endpoint.GetSection(name).Exists()))
        {
            yield return new Configuration.ConfigError(ConfigurationPath.Combine(endpoint.Path, httpsOnly), $"is for https:// endpoints, and this one's Url is '{url}': use an https:// Url, or remove {httpsOnly}.");
        }

        foreach (var error in SettingsErrors(endpoint).Concat(endpoint.GetSection("Sni").GetChildren().SelectMany(SettingsErrors)))
        {
            yield return error;
        }

        if (defaults is not null && address is not null)
        {
            foreach (var error in ProtocolsErrors(endpoint, defaults, https: !isHttp))
            {
                yield return error;
            }
        }
    }

    /// <summary>
    /// What an endpoint, <c>Kestrel:EndpointDefaults</c> and each of an endpoint's <c>Sni</c> entries may set: Kestrel
    /// ignores a value it does not know there without a word (tried: <c>"Protocols": "Http9"</c>,
    /// <c>"ClientCertificateMode": "Maybe"</c> and <c>"SslProtocols": ["Tls9"]</c> under <c>Sni</c> served as if unset).
    /// </summary>
    private static IEnumerable<Configuration.ConfigError> SettingsErrors(IConfigurationSection section)
    {
        if (section["ClientCertificateMode"] is { } mode && !IsName<Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode>(mode))
        {
            yield return new Configuration.ConfigError(ConfigurationPath.Combine(section.Path, "ClientCertificateMode"), $"'{mode}' is not {Configuration.ExpectedValue.Describe(typeof(Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode))}.");
        }

        var sslProtocols = new List<string>();
        foreach (var protocol in section.GetSection("SslProtocols").GetChildren())
        {
            if (protocol.Value is not { } name)
            {
                continue;
            }

            if (!IsName<System.Security.Authentication.SslProtocols>(name) || name.Equals("None", StringComparison.OrdinalIgnoreCase))
            {
                yield return new Configuration.ConfigError(protocol.Path, $"'{name}' is not an SSL protocol; use Tls12 or Tls13.");
                sslProtocols = null;
            }

            sslProtocols?.Add(name);
        }

        if (sslProtocols is { Count: > 0 } && TlsVersionsError(sslProtocols) is { } versions)
        {
            yield return new Configuration.ConfigError(ConfigurationPath.Combine(section.Path, "SslProtocols"), versions);
        }

        if (section["Protocols"] is { } protocols && !TryParseProtocols(protocols, out _))
        {
            yield return new Configuration.ConfigError(ConfigurationPath.Combine(section.Path, "Protocols"), IsName<HttpProtocols>(protocols)
                ? $"'{protocols}' would serve no protocol; use {ServedProtocols}."
                : $"'{protocols}' is not one of {ServedProtocols}.");
        }
    }

    /// <summary>
    /// TLS versions no client could connect with. On Linux .NET gives OpenSSL a lowest and a highest version, and
    /// OpenSSL serves them as one range that ends below the first version missing inside it; at its default security
    /// level it refuses TLS 1.0 and 1.1 (RFC 8996 retired them, and browsers refuse them too). Tried: <c>["Tls11"]</c>,
    /// <c>["Tls", "Tls12", "Tls13"]</c> and <c>["Tls11", "Tls13"]</c> each started and failed every handshake, with
    /// nothing logged; <c>["Tls11", "Tls12", "Tls13"]</c> serves TLS 1.2 and 1.3.
    /// </summary>
    internal static string? TlsVersionsError(IReadOnlyCollection<string> names, string consequence = "every handshake would fail")
    {
        string[] versions = ["Tls", "Tls11", "Tls12", "Tls13"];
        var listed = versions.Select(v => names.Contains(v, StringComparer.OrdinalIgnoreCase)).ToArray();
        var first = Array.IndexOf(listed, true);
        var gap = first < 0 ? -1 : Array.IndexOf(listed, false, first);
        if (gap >= 0 && Array.IndexOf(listed, true, gap) >= 0)
        {
            // A gap is at Tls11 or Tls12, so what is left below it is TLS 1.0 or 1.1 at most.
            return $"{List(names)} misses {versions[gap]} between versions it lists: OpenSSL serves one range of TLS versions, which ends at the gap, "
                + $"so only TLS 1.0 or 1.1 would be left, which it refuses, and {consequence}; list them without a gap, e.g. [\"Tls12\", \"Tls13\"].";
        }

        return listed[2] || listed[3]
            ? null
            : $"{List(names)} offers no TLS 1.2 or 1.3: OpenSSL refuses the older versions at its default security level (RFC 8996 retired them; browsers refuse them too), so {consequence}; use Tls12 or Tls13.";

        static string List(IEnumerable<string> names) => $"[{string.Join(", ", names.Select(n => $"'{n}'"))}]";
    }

    /// <summary>
    /// The protocols an endpoint serves, its own or <c>Kestrel:EndpointDefaults</c>' (which apply to both endpoints),
    /// against its Url and its job. Tried: <c>Http3</c> alone on an http:// Url, or on an https:// one where the machine has
    /// no QUIC (no libmsquic), ended the start with an unhandled exception and exit 134, the first also when it came from
    /// <c>EndpointDefaults</c>, which <c>--check</c> called valid; a Management endpoint without HTTP/1.1 (<c>Http2</c>,
    /// set on it or by <c>EndpointDefaults</c>) started and answered Kubernetes' probes and Prometheus' scrapes 400.
    /// </summary>
    private static IEnumerable<Configuration.ConfigError> ProtocolsErrors(IConfigurationSection endpoint, IConfigurationSection defaults, bool https)
    {
        var source = endpoint["Protocols"] is not null ? endpoint : defaults;
        var protocols = source["Protocols"];
        if (protocols is null || !TryParseProtocols(protocols, out var parsed))
        {
            return []; // Kestrel's default (HTTP/1.1 and HTTP/2), or a value EndpointErrors names
        }

        var key = ConfigurationPath.Combine(source.Path, "Protocols");
        var applies = source == endpoint ? "" : $" ({EndpointDefaultsSection} applies to the {endpoint.Key} endpoint, which sets no Protocols of its own)";
        var url = endpoint["Url"];
        if (parsed == HttpProtocols.Http3 && !https)
        {
            return [new(key, $"'{protocols}' needs an https:// Url (HTTP/3 runs over QUIC, with TLS); '{url}' is http{applies}.")];
        }

        if (parsed == HttpProtocols.Http3 && !QuicSupport.IsAvailable)
        {
            return [new(key, $"'{protocols}' alone needs QUIC, which this machine does not have (.NET finds no libmsquic), so Kestrel could not listen on '{url}'{applies}; use Http1AndHttp2, or Http1AndHttp2AndHttp3 to add HTTP/3 where QUIC is there.")];
        }

        if (endpoint.Key.Equals(ManagementEndpointName, StringComparison.OrdinalIgnoreCase) && !parsed.HasFlag(HttpProtocols.Http1))
        {
            var instead = source == endpoint ? "use Http1 or Http1AndHttp2, or leave it unset" : $"set Kestrel:Endpoints:{ManagementEndpointName}:Protocols to Http1 or Http1AndHttp2, and give {EndpointDefaultsSection}' value to the Proxy endpoint alone";
            return [new(key, $"'{protocols}' leaves the {ManagementEndpointName} endpoint without HTTP/1.1{applies}, which Kubernetes' probes and Prometheus' scrapes speak: each would get 400 and the pod would never be ready; {instead}.")];
        }

        if (endpoint.Key.Equals(HttpsRedirectEndpointName, StringComparison.OrdinalIgnoreCase) && !parsed.HasFlag(HttpProtocols.Http1))
        {
            var instead = source == endpoint ? "use Http1 or Http1AndHttp2, or leave it unset" : $"set Kestrel:Endpoints:{HttpsRedirectEndpointName}:Protocols to Http1, and give {EndpointDefaultsSection}' value to the Proxy endpoint alone";
            return [new(key, $"'{protocols}' leaves the {HttpsRedirectEndpointName} endpoint without HTTP/1.1{applies}, the only HTTP a browser speaks without TLS: every redirect would fail; {instead}.")];
        }

        return [];
    }

    private const string EndpointDefaultsSection = "Kestrel:EndpointDefaults";

    private static readonly string ServedProtocols = string.Join(", ", Enum.GetNames<HttpProtocols>().Where(name => name != nameof(HttpProtocols.None)));

    private static bool TryParseProtocols(string text, out HttpProtocols protocols)
    {
        protocols = HttpProtocols.None;
        return IsName<HttpProtocols>(text) && Enum.TryParse(text, ignoreCase: true, out protocols) && protocols != HttpProtocols.None;
    }

    /// <summary>What Kestrel refuses on an http:// endpoint (tried, SslProtocols: an unhandled exception at start).</summary>
    private static readonly string[] HttpsOnlySettings = ["Certificate", "SslProtocols", "ClientCertificateMode", "Sni"];

    /// <summary>One of the enum's names, as Kestrel's configuration reads it (not a number).</summary>
    private static bool IsName<TEnum>(string text)
        where TEnum : struct, Enum
        => Enum.TryParse<TEnum>(text, ignoreCase: true, out var value) && Enum.IsDefined(value) && !int.TryParse(text, out _);

    /// <summary>The port both URLs would bind, when they would collide: the same port, on the same host or a wildcard.</summary>
    internal static int? SamePort(string? first, string? second)
    {
        if (!TryParse(first, out var a) || !TryParse(second, out var b) || a.Port == 0 || a.Port != b.Port)
        {
            return null;
        }

        return string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) || IsWildcard(a.Host) || IsWildcard(b.Host) ? a.Port : null;

        static bool TryParse(string? url, out BindingAddress address)
        {
            address = null!;
            if (string.IsNullOrWhiteSpace(url))
            {
                return false;
            }

            try
            {
                address = BindingAddress.Parse(url);
                return true;
            }
            catch (FormatException)
            {
                return false; // Kestrel reports it when it binds
            }
        }

        static bool IsWildcard(string host) => host is "*" or "+" or "0.0.0.0" or "[::]" or "::";
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Proxy endpoint {Url} serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port.", EventName = "CleartextHttp2")]
        public static partial void CleartextHttp2(ILogger logger, string? url);

        [LoggerMessage(2, LogLevel.Information, "Proxy endpoint {Url} serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one port. Kestrel's warning that HTTP/2 is not enabled for it is wrong; it comes because Kestrel:Endpoints:Proxy:Protocols is set, and goes if that key is left out.", EventName = "CleartextHttp2KestrelWarning")]
        public static partial void CleartextHttp2KestrelWarns(ILogger logger, string? url);

        [LoggerMessage(4, LogLevel.Information, "HTTPS redirect endpoint {Url} answers every request with 308 to https://<its host>{Port}<its path and query>; nothing is proxied there.", EventName = "HttpsRedirectServed")]
        public static partial void HttpsRedirectServed(ILogger logger, string? url, string port);

        [LoggerMessage(3, LogLevel.Warning, "Kestrel:Endpoints:{Endpoint}:Sni names {Names} and no '*': a TLS client that asks for another name, or for none (one that connects by IP address), is refused during the handshake. Add a \"*\" entry to serve them the endpoint's certificate.", EventName = "SniWithoutFallback")]
        public static partial void SniWithoutFallback(ILogger logger, string endpoint, string names);
    }
}
