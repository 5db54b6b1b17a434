using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// Header values that are not ASCII go through as they came, as through nginx. HttpClient and Kestrel each
/// accept only ASCII by default, so a backend's <c>Content-Disposition: attachment; filename="résumé.pdf"</c>
/// in UTF-8 (or a Latin-1 byte) made every such request a 502 after two retries, counted against the
/// destination, and a client's UTF-8 header value the same (tried on the Release build).
/// <list type="bullet">
/// <item>Requests: Kestrel decodes values as UTF-8 (its default: bytes that are not UTF-8 get 400), and the
/// backend request encodes them as UTF-8 again, byte for byte. A cluster's <c>HttpClient.RequestHeaderEncoding</c>
/// (YARP's schema) still chooses another, one that writes ASCII as ASCII (checked with the configuration).</item>
/// <item>Responses: decoded as Latin-1 from the backend and encoded as Latin-1 to the client: one character per
/// byte, so any byte goes through unchanged. The client side's encoding is one for every cluster, so a cluster's
/// <c>HttpClient.ResponseHeaderEncoding</c> can only be Latin-1 (checked with the configuration).</item>
/// </list>
/// </summary>
internal sealed class HeaderEncodings : IProxyConfigRule
{
    private static readonly HeaderEncodingSelector<HttpRequestMessage> Utf8 = static (_, _) => Encoding.UTF8;
    private static readonly HeaderEncodingSelector<HttpRequestMessage> Latin1 = static (_, _) => Encoding.Latin1;

    /// <summary>The encoding of request header values towards the cluster's destinations.</summary>
    internal static Encoding RequestEncoding(HttpClientConfig config)
        => config.RequestHeaderEncoding is { } name ? Encoding.GetEncoding(name) : Encoding.UTF8;

    /// <summary>What the backend side uses where the cluster's <c>HttpClient</c> configuration names no encoding.</summary>
    internal static void ConfigureBackend(HttpClientConfig config, SocketsHttpHandler handler)
    {
        if (config.RequestHeaderEncoding is null)
        {
            handler.RequestHeaderEncodingSelector = Utf8;
        }

        if (config.ResponseHeaderEncoding is null)
        {
            handler.ResponseHeaderEncodingSelector = Latin1;
        }
    }

    public void ValidateRoute(RouteConfig route, string key, ICollection<ConfigError> errors)
    {
    }

    public void ValidateCluster(ClusterConfig cluster, string key, ICollection<ConfigError> errors)
    {
        if (cluster.HttpClient?.ResponseHeaderEncoding is { } responseName && TryGet(responseName) is { } response
            && response.CodePage != Encoding.Latin1.CodePage)
        {
            errors.Add(new ConfigError(
                $"{key}:HttpClient:ResponseHeaderEncoding",
                $"'{responseName}' cannot be used: the gateway passes response header bytes to clients unchanged, reading and writing them as Latin-1 (iso-8859-1) for every cluster. Remove the setting."));
        }

        // HttpClient encodes every request header value with it, ASCII ones included: with utf-16 the backend got
        // "c\0u\0r\0l\0" for curl (tried), a NUL after every character of every header.
        if (cluster.HttpClient?.RequestHeaderEncoding is { } requestName && TryGet(requestName) is { } request
            && !request.GetBytes(PrintableAscii).AsSpan().SequenceEqual(Encoding.ASCII.GetBytes(PrintableAscii)))
        {
            errors.Add(new ConfigError(
                $"{key}:HttpClient:RequestHeaderEncoding",
                $"'{requestName}' cannot be used: it does not write ASCII as ASCII, and every header of every request would reach the backend garbled. Use utf-8 (the default) or iso-8859-1."));
        }
    }

    private const string PrintableAscii = " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

    private static Encoding? TryGet(string name)
    {
        try
        {
            return Encoding.GetEncoding(name);
        }
        catch (ArgumentException)
        {
            return null; // YARP's own check names an encoding that does not exist.
        }
    }

    /// <summary>Response headers go to clients as Latin-1, so the bytes a backend sent come out unchanged.</summary>
    internal sealed class KestrelSetup : IConfigureOptions<KestrelServerOptions>
    {
        public void Configure(KestrelServerOptions options) => options.ResponseHeaderEncodingSelector = static _ => Encoding.Latin1;
    }
}
