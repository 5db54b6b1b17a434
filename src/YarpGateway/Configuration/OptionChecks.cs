using System.Net;

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

    /// <summary>
    /// A network in CIDR notation with no host bits set. .NET clears host bits silently (10.1.2.3/8 reads as
    /// 10.0.0.0/8), which would trust far more than the operator may have meant; such a network is refused.
    /// </summary>
    public static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        network = default;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        return slash > 0 && IPNetwork.TryParse(text, out network) && IPAddress.TryParse(text.AsSpan(0, slash), out var address) && network.BaseAddress.Equals(address);
    }
}
