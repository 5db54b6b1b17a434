namespace YarpGateway.Configuration;

/// <summary>The names YARP gives a meaning of its own in a route's policy fields.</summary>
internal static class RoutePolicyNames
{
    public const string Default = "Default";
    public const string Anonymous = "Anonymous";
    public const string Disable = "Disable";

    public static bool Is(string? value, string name) => string.Equals(value, name, StringComparison.OrdinalIgnoreCase);

    public static bool IsReservedAuthorization(string name) => Is(name, Default) || Is(name, Anonymous);

    /// <summary>Whether a route with this <c>AuthorizationPolicy</c> authenticates its requests: it names one, and not <c>Anonymous</c>.</summary>
    public static bool Authenticates([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] string? authorizationPolicy)
        => !string.IsNullOrEmpty(authorizationPolicy) && !Is(authorizationPolicy, Anonymous);

    /// <summary>"a, b" or "none are defined", for error messages.</summary>
    public static string Describe(IEnumerable<string> names)
    {
        var list = names.Order(StringComparer.OrdinalIgnoreCase).ToList();
        return list.Count == 0 ? "none are defined" : "defined: " + string.Join(", ", list);
    }
}
