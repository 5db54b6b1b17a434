using System.Globalization;
using Yarp.ReverseProxy.Model;

namespace YarpGateway.LoadBalancing;

/// <summary>
/// A destination's weight, from its <c>Metadata: { "Weight": "3" }</c>. Missing means 1; 0 means
/// drained (no new requests, in-flight ones finish); anything else must be a whole number up to 10000.
/// </summary>
internal static class DestinationWeight
{
    public const string MetadataKey = "Weight";
    public const int Default = 1;
    public const int Max = 10_000;

    /// <summary>Parses a configured weight; <paramref name="error"/> says what is wrong when it returns false.</summary>
    public static bool TryParse(string? text, out int weight, out string? error)
    {
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            weight = Default;
            return true;
        }

        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out weight) && weight <= Max)
        {
            return true;
        }

        weight = 0;
        error = string.Create(CultureInfo.InvariantCulture, $"'{text}' is not a valid weight; use a whole number from 0 (drained) to {Max}.");
        return false;
    }

    /// <summary>The weight of a destination whose config was validated; falls back to the default otherwise.</summary>
    public static int Of(DestinationState destination)
    {
        var metadata = destination.Model?.Config.Metadata;
        return metadata is not null && metadata.TryGetValue(MetadataKey, out var text) && TryParse(text, out var weight, out _)
            ? weight
            : Default;
    }
}
