namespace YarpGateway.Configuration;

/// <summary>What a configuration value of a given type must look like, in words for an error message.</summary>
internal static class ExpectedValue
{
    /// <summary>E.g. "a whole number", "true or false", "one of Backpressure, DropMessages, Disconnect".</summary>
    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            _ when type.IsEnum => $"one of {string.Join(", ", Enum.GetNames(type))}",
            _ when type == typeof(TimeSpan) => "a time span ([d.]hh:mm:ss[.fff], e.g. 00:00:05 for 5 s)",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(Uri) => "a URL",
            _ when type == typeof(int) || type == typeof(long) => "a whole number",
            _ when type == typeof(double) => "a number",
            _ => $"a valid {type.Name}",
        };
    }
}
