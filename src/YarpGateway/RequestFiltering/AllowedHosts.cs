using Microsoft.AspNetCore.HostFiltering;
using YarpGateway.Configuration;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// <c>AllowedHosts</c>, ASP.NET Core's host filtering: hosts separated by ';', each a name or an address without scheme
/// or port (an IPv6 address in brackets), <c>*.example.com</c>, or <c>*</c>. Tried: a port (<c>127.0.0.1:8080</c>), a
/// scheme (<c>https://a.example</c>) or hosts separated by commas never match a request's Host, so every request got 400
/// while readiness stayed 200, nothing was logged (the platform says so at Information, under a category logged at
/// Warning), <c>--check</c> called the file valid, and a reload applied it at once. Now each is a start-up error, and a
/// reload that brings one in is refused while the hosts in force stay (<see cref="CheckedSectionReload"/>).
/// </summary>
internal static class AllowedHosts
{
    public const string Key = "AllowedHosts";

    /// <summary>Each entry that would match no Host header.</summary>
    public static List<ConfigError> Find(IConfiguration configuration)
    {
        var errors = new List<ConfigError>();
        foreach (var entry in configuration[Key]?.Split(';', StringSplitOptions.RemoveEmptyEntries) ?? [])
        {
            if (Refusal(entry) is { } reason)
            {
                errors.Add(new ConfigError(Key, $"'{entry}' {reason}, so it matches no request's Host: each request it was meant to allow would get 400. Hosts are separated by ';', without scheme or port: \"example.com;*.example.com;[::1]\"."));
            }
        }

        return errors;
    }

    /// <summary>The platform's reload of the host filter, checked first.</summary>
    public static void CheckBeforeApplying(IServiceCollection services)
        => CheckedSectionReload.ReplaceChangeSource<HostFilteringOptions>(services, Key, Find);

    private static string? Refusal(string entry)
    {
        if (entry == "*")
        {
            return null;
        }

        if (entry.Contains("://", StringComparison.Ordinal))
        {
            return "has a scheme";
        }

        if (entry.AsSpan().IndexOfAny(", \t") >= 0)
        {
            return "holds a comma or a space";
        }

        if (entry.Contains('/', StringComparison.Ordinal))
        {
            return "has a path";
        }

        var host = entry.StartsWith("*.", StringComparison.Ordinal) ? entry[2..] : entry;
        if (host.StartsWith('['))
        {
            var end = host.IndexOf(']', StringComparison.Ordinal);
            return end < 0 ? "has no closing ']'" : end < host.Length - 1 ? "has a port" : null;
        }

        return host.Count(c => c == ':') switch
        {
            0 => Uri.CheckHostName(host) == UriHostNameType.Unknown ? "is not a host name" : null,
            1 => "has a port",
            _ => "is an IPv6 address without its brackets ([::1])",
        };
    }
}
