namespace YarpGateway.Configuration;

/// <summary>
/// For a section of named route policies (<c>Policies:&lt;name&gt;:&lt;setting&gt;</c>) whose settings reload while which
/// policies exist is read at start-up: the keys a reload applies (<see cref="AppliedKeys"/>).
/// </summary>
internal static class PolicyKeys
{
    public const string Policies = "Policies:";

    /// <summary>The names of the policies under <paramref name="section"/>'s <c>Policies</c> that set anything (a key with no value is none).</summary>
    public static IEnumerable<string> Names(IConfigurationSection section)
        => section.GetSection("Policies").GetChildren().Where(p => p.AsEnumerable().Any(kv => kv.Value is not null)).Select(p => p.Key);

    /// <summary>
    /// The keys of the policies the gateway started with, but for <paramref name="readAtStart"/> (a setting of each that
    /// takes a restart). A started policy gone from the section keeps running as it was until a restart, so what was
    /// applied of it stays.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Live(IReadOnlyCollection<string> started, IReadOnlyDictionary<string, string> keys, IReadOnlyDictionary<string, string>? applied, string? readAtStart = null)
    {
        var live = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in started)
        {
            var prefix = Policies + name + ":";
            var present = false;
            foreach (var (key, value) in keys)
            {
                if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                {
                    present = true;
                    if (readAtStart is null || !key.AsSpan(prefix.Length).Equals(readAtStart, StringComparison.OrdinalIgnoreCase))
                    {
                        live[key] = value;
                    }
                }
            }

            if (!present && applied is not null)
            {
                foreach (var (key, value) in applied)
                {
                    if (key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                    {
                        live[key] = value;
                    }
                }
            }
        }

        return live;
    }
}
