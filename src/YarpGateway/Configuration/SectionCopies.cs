namespace YarpGateway.Configuration;

/// <summary>
/// The latest copy of a section (<see cref="SectionCopy"/>), for what reads the same section after the same reload: the
/// proxy configuration's reload and the unknown-key check both read <c>ReverseProxy</c>, and make one copy between them
/// (the check's own walk of the section was a fifth of a 5,000-route reload's allocations). A copy is given again
/// while no provider has changed since it was made. Held weakly: a copy of 5,000 routes is tens of megabytes, kept only
/// while a reader holds it.
/// </summary>
internal sealed class SectionCopies(IConfiguration configuration)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, WeakReference<SectionCopy>> _latest = new(StringComparer.OrdinalIgnoreCase);

    /// <summary><paramref name="section"/>'s copy: the latest one if it is still current, else a new one.</summary>
    public SectionCopy Of(string section)
    {
        lock (_gate)
        {
            if (_latest.TryGetValue(section, out var latest) && latest.TryGetTarget(out var copy) && copy.IsCurrent(configuration))
            {
                return copy;
            }
        }

        var made = SectionCopy.Of(configuration, section);
        if (made.Whole)
        {
            lock (_gate)
            {
                _latest[section] = new WeakReference<SectionCopy>(made);
            }
        }

        return made;
    }
}
