using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// A configuration section's keys and values, read once, in a configuration of their own that answers as the original
/// did: the same paths, keys and values. A walk of the application's configuration asks every provider (the files, the
/// environment, the command line, the host's: 13 of them) for every section's children, and with 5,000 routes that was
/// most of a reload's cost: a reload walked <c>ReverseProxy</c> four times (its snapshot before and after the read, its
/// keys for the change log, the read) and the unknown-key check a fifth. Now the copy is made from each provider's own
/// list of its keys, without a walk, and the reload reads, snapshots and lists the keys of the copy, which the check
/// reads too (<see cref="SectionCopies"/>).
/// </summary>
internal sealed class SectionCopy
{
    private readonly IChangeToken _reloaded; // the configuration's, taken before the read
    private readonly (object, int)[]? _versions; // the files', before the read
    private readonly Lazy<IReadOnlyDictionary<string, string>> _keys;

    private SectionCopy(string section, List<KeyValuePair<string, string>> values, IChangeToken reloaded, (object, int)[]? versions, bool whole)
    {
        _reloaded = reloaded;
        _versions = versions;
        Whole = whole;
        var data = new Dictionary<string, string?>(values.Count, StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in values)
        {
            data[key] = value;
        }

        Configuration = new ConfigurationRoot([new Provider(data)]);
        Snapshot = ConfigChanges.Snapshot(values);
        _keys = new(() =>
        {
            var keys = new Dictionary<string, string>(values.Count, StringComparer.OrdinalIgnoreCase);
            var prefix = section.Length + 1; // "ReverseProxy:"
            foreach (var (key, value) in values)
            {
                if (key.Length > section.Length)
                {
                    keys[key[prefix..]] = value;
                }
            }

            return keys;
        });
    }

    /// <summary><paramref name="section"/> of <paramref name="configuration"/>, read once: from its providers' keys, or by a walk where a provider does not list them.</summary>
    public static SectionCopy Of(IConfiguration configuration, string section)
    {
        var token = configuration.GetReloadToken();
        var files = Versions(configuration);
        var values = Read(configuration, section);

        // A file's read replaces its keys, then raises the reload event: the versions tell a read that has not yet raised it.
        var whole = files is not null && !token.HasChanged && Versions(configuration)!.SequenceEqual(files);
        return new SectionCopy(section, values, token, files, whole);
    }

    /// <summary>Whether the copy is <see cref="Whole"/> and no provider of <paramref name="configuration"/> has changed since (<see cref="SectionCopies"/>).</summary>
    public bool IsCurrent(IConfiguration configuration)
        => Whole && !_reloaded.HasChanged && Versions(configuration) is { } now && now.SequenceEqual(_versions!);

    /// <summary>
    /// <see cref="Snapshot"/> of <paramref name="section"/> as it is now, without a copy: for comparing a copy that is not
    /// <see cref="Whole"/> with the section once more.
    /// </summary>
    public static string SnapshotOf(IConfiguration configuration, string section) => ConfigChanges.Snapshot(Read(configuration, section));

    // The section's keys with a value, by their full paths: from its providers' keys, or by a walk where a provider does not list them.
    private static List<KeyValuePair<string, string>> Read(IConfiguration configuration, string section)
        => FromProviders(configuration, section) ?? Walk(configuration, section);

    private static List<KeyValuePair<string, string>> Walk(IConfiguration configuration, string section)
    {
        var values = new List<KeyValuePair<string, string>>();
        foreach (var (key, value) in configuration.GetSection(section).AsEnumerable())
        {
            if (value is not null)
            {
                values.Add(new(key, value));
            }
        }

        return values;
    }

    // The section's keys from each provider's own list of them, as the configuration answers (the last provider that
    // holds a key gives its value), without the walk's question to every provider for every section's children: the
    // gateway's providers all list their keys (the files' and the others', IndexedConfigurationSource). Null if one does not.
    private static List<KeyValuePair<string, string>>? FromProviders(IConfiguration configuration, string section)
    {
        if (configuration is not IConfigurationRoot root)
        {
            return null;
        }

        var data = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var provider in root.Providers)
        {
            IEnumerable<string>? keys = provider switch
            {
                LastGoodJsonConfigurationSource.Provider file => file.Keys,
                IndexedConfigurationSource.Provider indexed => indexed.Paths,
                _ => null,
            };
            if (keys is null)
            {
                return null;
            }

            foreach (var key in keys)
            {
                if (key.StartsWith(section, StringComparison.OrdinalIgnoreCase) && (key.Length == section.Length || key[section.Length] == ConfigurationPath.KeyDelimiter[0])
                    && provider.TryGet(key, out var value))
                {
                    data[key] = value;
                }
            }
        }

        var values = new List<KeyValuePair<string, string>>(data.Count);
        foreach (var (key, value) in data)
        {
            if (value is not null)
            {
                values.Add(new(key, value));
            }
        }

        return values;
    }

    // The versions of the files the configuration reads (the only providers that change after start), or null for a
    // configuration whose providers are not known.
    private static (object, int)[]? Versions(IConfiguration configuration)
        => configuration is IConfigurationRoot root ? [.. root.Providers.OfType<LastGoodJsonConfigurationSource.Provider>().Select(file => file.Version)] : null;

    /// <summary>
    /// Whether no file was read again while the section was read: the copy holds one version of the configuration.
    /// When false, one was, and the copy may mix a file's old keys and new ones: the caller reads the section again to
    /// compare, or makes a new copy.
    /// </summary>
    public bool Whole { get; }

    /// <summary>The copy, as a configuration: <c>GetSection</c> with the original's paths reads what the original held.</summary>
    public IConfiguration Configuration { get; }

    /// <summary>
    /// The section's keys and values in one string, as <see cref="ConfigChanges.Snapshot(IConfiguration, string)"/> writes
    /// them: equal strings mean nothing changed. A key that two providers spell in different cases is written in the
    /// first's case (the configuration's walk takes each level's case from the provider that sorts first), so compare
    /// copies with copies.
    /// </summary>
    public string Snapshot { get; }

    /// <summary>The section's keys with a value, relative to it, as <see cref="ConfigChanges.Capture"/> lists them (made when first asked: a reload that changed nothing does not).</summary>
    public IReadOnlyDictionary<string, string> Keys => _keys.Value;

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
