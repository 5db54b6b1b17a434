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
    /// An IP address as it is written: IPv6, or IPv4 as four decimal numbers. .NET also reads the old shorthand forms,
    /// in which "1.2.3" is 1.2.0.3, "10.1" is 10.0.0.1 and "010.0.0.1" is octal, 8.0.0.1: a proxy or network written so
    /// would trust an address the operator did not mean (tried: KnownProxies ["1.2.3"] was accepted).
    /// </summary>
    public static bool TryParseAddress(ReadOnlySpan<char> text, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        if (text.Contains(':'))
        {
            return IPAddress.TryParse(text, out address);
        }

        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            var part = text[range];
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0') || part.ContainsAnyExceptInRange('0', '9'))
            {
                return false;
            }

            parts++;
        }

        return parts == 4 && IPAddress.TryParse(text, out address);
    }

    /// <summary>
    /// A network in CIDR notation with no host bits set. .NET clears host bits silently (10.1.2.3/8 reads as
    /// 10.0.0.0/8), which would trust far more than the operator may have meant; such a network is refused.
    /// </summary>
    public static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        network = default;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        return slash > 0 && IPNetwork.TryParse(text, out network) && TryParseAddress(text.AsSpan(0, slash), out var address) && network.BaseAddress.Equals(address);
    }
}
