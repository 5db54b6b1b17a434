namespace YarpGateway.Configuration;

/// <summary>
/// A configuration section's keys and values, read once (one walk of the configuration), in a configuration of their own
/// that answers as the original did: the same paths, keys and values. A walk of the application's configuration asks
/// every provider (the files, the environment, the command line, the host's) for every section's children, so that
/// with 5,000 routes it was most of a reload's cost: the reload walked <c>ReverseProxy</c> four times (its snapshot
/// before and after the read, its keys for the change log, the read), about 0.5 GB of allocations and a second of CPU.
/// A reload now walks it into a copy, and reads, snapshots and lists the keys of the copy.
/// </summary>
internal sealed class SectionCopy
{
    private SectionCopy(string section, List<KeyValuePair<string, string>> values, bool whole)
    {
        Whole = whole;
        var data = new Dictionary<string, string?>(values.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in values)
        {
            data[key] = value;
        }

        Configuration = new ConfigurationRoot([new Provider(data)]);
        Snapshot = ConfigChanges.Snapshot(values);
        var keys = new Dictionary<string, string>(values.Count, StringComparer.OrdinalIgnoreCase);
        var prefix = section.Length + 1; // "ReverseProxy:"
        foreach (var (key, value) in values)
        {
            if (key.Length > section.Length)
            {
                keys[key[prefix..]] = value;
            }
        }

        Keys = keys;
    }

    /// <summary><paramref name="section"/> of <paramref name="configuration"/>, read once.</summary>
    public static SectionCopy Of(IConfiguration configuration, string section)
    {
        var token = configuration.GetReloadToken();
        var files = Versions(configuration);
        var values = new List<KeyValuePair<string, string>>(); // full paths, the keys with a value
        foreach (var (key, value) in configuration.GetSection(section).AsEnumerable())
        {
            if (value is not null)
            {
                values.Add(new(key, value));
            }
        }

        // A file's read replaces its keys, then raises the reload event: the versions tell a read that has not yet raised it.
        var whole = files is not null && !token.HasChanged && Versions(configuration)!.SequenceEqual(files);
        return new SectionCopy(section, values, whole);
    }

    // The versions of the files the configuration reads (the only providers that change after start), or null for a
    // configuration whose providers are not known.
    private static (object, int)[]? Versions(IConfiguration configuration)
        => configuration is IConfigurationRoot root ? [.. root.Providers.OfType<LastGoodJsonConfigurationSource.Provider>().Select(file => file.Version)] : null;

    /// <summary>
    /// Whether no file was read again while the section was walked: the copy holds one version of the configuration.
    /// When false, one was, and the copy may mix a file's old keys and new ones: the caller walks the section again to
    /// compare (<see cref="ConfigChanges.Snapshot(IConfiguration, string)"/>), or reads it again.
    /// </summary>
    public bool Whole { get; }

    /// <summary>The copy, as a configuration: <c>GetSection</c> with the original's paths reads what the original held.</summary>
    public IConfiguration Configuration { get; }

    /// <summary>What <see cref="ConfigChanges.Snapshot(IConfiguration, string)"/> gave for the section when it was read.</summary>
    public string Snapshot { get; }

    /// <summary>What <see cref="ConfigChanges.Capture"/> gave for the section when it was read.</summary>
    public IReadOnlyDictionary<string, string> Keys { get; }

    private sealed class Provider : ConfigurationProvider
    {
        private readonly ConfigurationChildIndex _children;

        public Provider(Dictionary<string, string?> data)
        {
            Data = data;
            _children = new ConfigurationChildIndex(data);
        }

        public override void Set(string key, string? value) => throw new NotSupportedException("A copy of a configuration section is read only.");

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath) => _children.ChildKeys(earlierKeys, parentPath);
    }
}
