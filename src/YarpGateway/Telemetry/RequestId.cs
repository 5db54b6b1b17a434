using System.Buffers;
using YarpGateway.Configuration;

namespace YarpGateway.Telemetry;

/// <summary>
/// The request id: when <see cref="TelemetryOptions.RequestId"/> is on, every request on the proxy endpoint carries one in
/// <see cref="TelemetryOptions.RequestIdHeader"/> (<c>X-Request-ID</c>) to its backend, and its answer carries the same
/// one back to the client, the gateway's own answers (404, 400, 502, admission's 503) included; the access log's
/// <c>id</c> is that value. So a client's "request X failed" is found in the gateway's log and in the backend's.
/// <list type="bullet">
/// <item>An id the request brings (one value, 1 to <see cref="MaxLength"/> of letters, digits and <c>-_.:+/=@</c>) is
/// kept: a load balancer or ingress in front (nginx's <c>$request_id</c>, a client library's id) has already logged it.
/// Anything else (none, two, too long, spaces or quotes that would break a log line) is replaced by a new one: 32
/// random hexadecimal digits, the form of nginx's <c>$request_id</c>.</item>
/// <item>The answer's header is set as the answer starts, over one a backend may have set, so what the client reads is
/// what the log says.</item>
/// </list>
/// Off, it costs one read of the options per request. On, a new id is a 32-character string, and the answer's header a
/// callback registered with the response (one delegate made at start, the context its state).
/// </summary>
internal sealed class RequestId
{
    /// <summary>The longest id kept from a request (Heroku's router keeps up to 200, Envoy's UUIDs are 36).</summary>
    internal const int MaxLength = 128;

    private static readonly SearchValues<char> IdChars =
        SearchValues.Create("-_.:+/=@0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private readonly ReloadableOptions<TelemetryOptions> _options;

    // Made once: the answer's header is the request's, read back under the header's current name, so that a request
    // registers its context alone and nothing is allocated for the callback's state.
    private readonly Func<object, Task> _setOnAnswer;

    public RequestId(ReloadableOptions<TelemetryOptions> options)
    {
        _options = options;
        _setOnAnswer = state =>
        {
            var context = (HttpContext)state;
            var header = _options.Current.RequestIdHeader;
            var id = context.Request.Headers[header];
            if (id.Count == 1)
            {
                context.Response.Headers[header] = id;
            }

            return Task.CompletedTask;
        };
    }

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        var settings = _options.Current;
        if (settings.RequestId)
        {
            Assign(context, settings.RequestIdHeader);
        }

        return next(context);
    };

    private void Assign(HttpContext context, string header)
    {
        if (Sent(context, header) is null)
        {
            context.Request.Headers[header] = New();
        }

        context.Response.OnStarting(_setOnAnswer, context);
    }

    /// <summary>Whether a request's id is kept: 1 to <see cref="MaxLength"/> characters a log line carries as they are.</summary>
    internal static bool IsWellFormed(string? id) => id is { Length: > 0 and <= MaxLength } && !id.AsSpan().ContainsAnyExcept(IdChars);

    /// <summary>The request's id as the access log writes it: the header's value when it is well formed, else <c>-</c>.</summary>
    internal static string Of(HttpContext context, string header) => Sent(context, header) ?? "-";

    /// <summary>The header the id is in now (<c>Gateway:Telemetry:RequestIdHeader</c>, live).</summary>
    public string Header => _options.Current.RequestIdHeader;

    /// <summary>The request's id, read from <see cref="Header"/>, for a line about the request: as <see cref="Of(HttpContext, string)"/>.</summary>
    public string Of(HttpContext context) => Of(context, Header);

    /// <summary>The id the request carries in <paramref name="header"/>: its one value when well formed, else null.</summary>
    private static string? Sent(HttpContext context, string header)
    {
        var value = context.Request.Headers[header];
        return value.Count == 1 && IsWellFormed(value[0]) ? value[0] : null;
    }

    /// <summary>
    /// A new id: 128 bits of <see cref="Random.Shared"/> as 32 lower-case hexadecimal digits. Not a secret, so not from the
    /// system's cryptographic source, which cost a system call per id (<see cref="Guid.NewGuid"/>'s); unique enough that
    /// two requests sharing one is not a concern (2^-64 odds past four billion ids).
    /// </summary>
    internal static string New()
    {
        Span<byte> bits = stackalloc byte[16];
        Random.Shared.NextBytes(bits);
        return Convert.ToHexStringLower(bits);
    }
}
