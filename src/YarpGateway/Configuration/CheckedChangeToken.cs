using Microsoft.Extensions.Primitives;

namespace YarpGateway.Configuration;

/// <summary>
/// The change token of options that a checked reload builds again (<see cref="CheckedSectionReload"/>,
/// <see cref="Security.BearerOptionsReload"/>): renewed under the reload's lock once an edit has checked out, and fired
/// after it; a rebuild that throws while it fires is returned, not thrown on the configuration's reload thread, where it
/// would end the process.
/// </summary>
internal sealed class CheckedChangeToken : IDisposable
{
    private CancellationTokenSource _source = new();

    public IChangeToken Get() => new CancellationChangeToken(Volatile.Read(ref _source).Token);

    /// <summary>Under the caller's lock: a new token for the next edit, and the source to <see cref="Fire"/> once the lock is left.</summary>
    public CancellationTokenSource Renew()
    {
        var fired = _source;
        Volatile.Write(ref _source, new CancellationTokenSource());
        return fired;
    }

    /// <summary>
    /// Tells the options of the change, so that they are built again: null, or what the rebuild threw. The source is not
    /// disposed: a <see cref="Get"/> that read it before <see cref="Renew"/> may still ask for its token (it holds no timer).
    /// </summary>
    public static string? Fire(CancellationTokenSource fired)
    {
        try
        {
            fired.Cancel();
            return null;
        }
        catch (AggregateException ex)
        {
            return ex.InnerException?.Message ?? ex.Message;
        }
    }

    public void Dispose() => _source.Dispose();
}
