namespace YarpGateway.RequestFiltering;

/// <summary>
/// A path segment that is a dot segment with a path parameter (<c>/public/..;/admin</c>, <c>/a/.;x/b</c>, escaped as
/// <c>%2e%2e;</c>) gets 400 before routing. Kestrel resolves <c>..</c> before routing but not <c>..;</c>, so such a
/// request was routed as a path under <c>/public/</c> and reached that route's backend as sent, where Tomcat and Jetty
/// (and Spring behind them) strip the parameter and then resolve the <c>..</c>: <c>/admin</c>, past whatever the
/// gateway's <c>/admin</c> route asks (its authorization policy, its limits). nginx forwards such paths too; Spring
/// Security's firewall refuses them. No browser or client library sends one. Other path parameters
/// (<c>/files/a;v2.pdf</c>, <c>;jsessionid=</c>) pass. The filter is <see cref="AmbiguousPaths"/>'s.
/// </summary>
internal static class DotSegmentParameters
{
    /// <summary>What the client is told (<see cref="AmbiguousPaths"/> refuses such a path).</summary>
    public const string Refusal = "gateway: a path segment '..;' or '.;' is read as '..' or '.' by some servers; the gateway refuses it\n";

    /// <summary>Whether the decoded path (Kestrel's, where <c>%2e</c> is already <c>.</c>) has a segment <c>.;...</c> or <c>..;...</c>.</summary>
    internal static bool IsDotSegmentWithParameter(string? path)
    {
        if (path is null || !path.Contains(';'))
        {
            return false;
        }

        foreach (var range in path.AsSpan().Split('/'))
        {
            if (IsDotWithParameter(path.AsSpan()[range]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether one segment is <c>.;...</c> or <c>..;...</c> (three dots are a name).</summary>
    internal static bool IsDotWithParameter(ReadOnlySpan<char> segment) => segment.StartsWith(".;") || segment.StartsWith("..;");
}
