namespace YarpGateway.Configuration;

/// <summary>
/// The checks every <c>Gateway:*</c> options validator shares, with one wording: the error names the
/// full key and the value it got.
/// </summary>
internal static class OptionChecks
{
    public static void Positive(List<string> errors, string key, TimeSpan value)
    {
        if (value <= TimeSpan.Zero)
        {
            errors.Add($"{key} must be positive; got {value}.");
        }
    }

    public static void NotNegative(List<string> errors, string key, long value)
    {
        if (value < 0)
        {
            errors.Add($"{key} must not be negative; got {value}.");
        }
    }

    public static void NotNegative(List<string> errors, string key, TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            errors.Add($"{key} must not be negative; got {value}.");
        }
    }
}
