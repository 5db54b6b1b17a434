using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.ForwardedHeaders;

/// <summary>
/// The peers trusted under <c>Gateway:ForwardedHeaders</c>, as last applied (the section reloads: a CDN's new range added
/// to <c>KnownNetworks</c> applies to the next request, without a restart), and the one middleware that acts on them, early
/// on the proxy endpoint before anything reads the client address: a client's own claims of an address, a scheme or a port
/// are removed unless its peer is trusted (<see cref="ProxyClaims"/>), then, only when some peer is trusted, ASP.NET Core's
/// forwarded-headers middleware reads <c>X-Forwarded-For</c>, built anew for each applied value (it takes its options once).
/// With nobody trusted, a request costs one read of a field and the claims' look-ups.
/// </summary>
internal sealed class TrustedProxies : IDisposable
{
    private readonly ReloadableOptions<GatewayForwardedHeadersOptions> _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Lock _gate = new();
    private RequestDelegate? _next;
    private volatile Trusted? _trusted;

    public TrustedProxies(ReloadableOptions<GatewayForwardedHeadersOptions> options, ILoggerFactory loggerFactory)
    {
        _options = options;
        _loggerFactory = loggerFactory;
        _options.Changed += Apply;
    }

    /// <summary>The middleware: placed once, where the client address is decided.</summary>
    public Func<RequestDelegate, RequestDelegate> Middleware => next =>
    {
        lock (_gate)
        {
            _next = next;
        }

        Apply(_options.Current);
        return InvokeAsync;
    };

    private Task InvokeAsync(HttpContext context)
    {
        var trusted = _trusted;
        ProxyClaims.RemoveUnlessTrusted(context, trusted?.Options);
        return trusted is null ? _next!(context) : trusted.Forwarding.Invoke(context);
    }

    // From the value current when it runs (not the event's), under a lock: a reload while the pipeline is built cannot
    // leave the older value in force.
    private void Apply(GatewayForwardedHeadersOptions _)
    {
        lock (_gate)
        {
            if (_next is not { } next)
            {
                return; // before the pipeline is built: built with the value current then
            }

            var settings = _options.Current;
            _trusted = settings.Enabled ? new Trusted(ToAspNetCore(settings), next, _loggerFactory) : null;
        }
    }

    /// <summary>
    /// ASP.NET Core's options trusting exactly the configured peers (its defaults trust loopback) for <c>X-Forwarded-For</c>
    /// and <c>X-Forwarded-Proto</c>. A load balancer that ends TLS in front of the gateway says <c>https</c>; the backend was
    /// told <c>http</c>, the gateway's own scheme, and a backend that sends plain-HTTP clients to https (ASP.NET Core's
    /// HTTPS redirection, Rails' <c>force_ssl</c>, Django's <c>SECURE_SSL_REDIRECT</c>) sent every browser round in a loop.
    /// <c>X-Forwarded-Host</c> is not read: the host chooses routes, and load balancers keep the client's <c>Host</c>.
    /// </summary>
    private static ForwardedHeadersOptions ToAspNetCore(GatewayForwardedHeadersOptions settings)
    {
        var options = new ForwardedHeadersOptions
        {
            ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto,
            ForwardLimit = settings.ForwardLimit,
        };
        options.KnownIPNetworks.Clear();
        options.KnownProxies.Clear();
        foreach (var network in settings.KnownNetworks)
        {
            options.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
        }

        foreach (var proxy in settings.KnownProxies)
        {
            options.KnownProxies.Add(IPAddress.Parse(proxy));
        }

        return options;
    }

    public void Dispose() => _options.Changed -= Apply;

    private sealed class Trusted(ForwardedHeadersOptions options, RequestDelegate next, ILoggerFactory loggerFactory)
    {
        public ForwardedHeadersOptions Options { get; } = options;

        public ForwardedHeadersMiddleware Forwarding { get; } = new(WithoutOriginalHeaders(next), loggerFactory, Microsoft.Extensions.Options.Options.Create(options));
    }

    /// <summary>
    /// ASP.NET Core's forwarded-headers middleware keeps the peer it replaced (a trusted proxy's address and port) in
    /// <c>X-Original-For</c>, and the scheme in <c>X-Original-Proto</c>, request headers that YARP then sent to every
    /// backend: its own bookkeeping, not something a backend was told before (nginx's realip module adds nothing of the
    /// kind), and an internal address.
    /// </summary>
    private static RequestDelegate WithoutOriginalHeaders(RequestDelegate next) => context =>
    {
        var headers = context.Request.Headers;
        headers.Remove(ForwardedHeadersDefaults.XOriginalForHeaderName);
        headers.Remove(ForwardedHeadersDefaults.XOriginalProtoHeaderName);
        return next(context);
    };
}
