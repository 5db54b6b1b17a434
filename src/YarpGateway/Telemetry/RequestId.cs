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
/// hexadecimal digits of a random UUID, the form of nginx's <c>$request_id</c>.</item>
/// <item>The answer's header is set as the answer starts, over one a backend may have set, so what the client reads is
/// what the log says.</item>
/// </list>
/// Off, it costs one read of the options per request. On, a new id is a 32-character string, and the answer's header a
/// callback registered with the response.
/// </summary>
internal sealed class RequestId(ReloadableOptions<TelemetryOptions> options)
{
    /// <summary>The longest id kept from a request (Heroku's router keeps up to 200, Envoy's UUIDs are 36).</summary>
    internal const int MaxLength = 128;

    private static readonly SearchValues<char> IdChars =
        SearchValues.Create("-_.:+/=@0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private static readonly Func<object, Task> SetOnAnswer = static state =>
    {
        var (context, header, id) = ((HttpContext, string, string))state;
        context.Response.Headers[header] = id;
        return Task.CompletedTask;
    };

    public Func<RequestDelegate, RequestDelegate> Middleware => next => context =>
    {
        var settings = options.Current;
        if (settings.RequestId)
        {
            Assign(context, settings.RequestIdHeader);
        }

        return next(context);
    };

    private static void Assign(HttpContext context, string header)
    {
        var headers = context.Request.Headers;
        var sent = headers[header];
        string id;
        if (sent.Count == 1 && IsWellFormed(sent[0]))
        {
            id = sent[0]!;
        }
        else
        {
            id = New();
            headers[header] = id;
        }

        context.Response.OnStarting(SetOnAnswer, (context, header, id));
    }

    /// <summary>Whether a request's id is kept: 1 to <see cref="MaxLength"/> characters a log line carries as they are.</summary>
    internal static bool IsWellFormed(string? id) => id is { Length: > 0 and <= MaxLength } && !id.AsSpan().ContainsAnyExcept(IdChars);

    /// <summary>The request's id as the access log writes it: the header's value when it is well formed, else <c>-</c>.</summary>
    internal static string Of(HttpContext context, string header)
    {
        var value = context.Request.Headers[header];
        return value.Count == 1 && IsWellFormed(value[0]) ? value[0]! : "-";
    }

    /// <summary>A new id: a random (version 4) UUID as 32 lower-case hexadecimal digits, 122 of its bits random.</summary>
    internal static string New() => Guid.NewGuid().ToString("N");
}
