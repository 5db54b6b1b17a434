using System.Globalization;
using Microsoft.AspNetCore.Connections;
using YarpGateway.Admission;
using YarpGateway.Configuration;

namespace YarpGateway.Endpoints;

/// <summary>
/// At most <see cref="Limit"/> proxy connections open at once, WebSockets included: at the limit the
/// proxy listener accepts nothing, and new clients wait in the kernel's listen queue until a
/// connection closes, as with HAProxy's <c>maxconn</c>. The limit is
/// <see cref="ConnectionAdmissionOptions.MaxOpen"/>, by default what the process's open-file limit
/// allows (<see cref="FromOpenFileLimit"/>). Past that limit every accept fails (<c>EMFILE</c>): Kestrel
/// retries it in a busy loop, and the runtime ends the process ("Out of memory.") the next time it
/// starts a thread, which needs a file descriptor too; every connection is dropped. Read at start.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The semaphore lives as long as the process: connections give their places back from their close callbacks, which can run after the host is disposed, and a disposed SemaphoreSlim throws on Release. Its wait handle is never created, so there is nothing to free.")]
internal sealed partial class OpenConnectionLimit
{
    /// <summary>What the process keeps for itself before connections are counted: at least this many descriptors.</summary>
    internal const int MinReserve = 512;

    private readonly SemaphoreSlim? _room;
    private readonly Telemetry.OncePer _reachedLog;
    private readonly ILogger<OpenConnectionLimit> _logger;

    public OpenConnectionLimit(ReloadableOptions<AdmissionOptions> options, TimeProvider timeProvider, ILogger<OpenConnectionLimit> logger)
        : this(options.Current.Connections.MaxOpen, ReadOpenFileLimit(), timeProvider, logger)
    {
    }

    internal OpenConnectionLimit(int? maxOpen, long? openFileLimit, TimeProvider timeProvider, ILogger<OpenConnectionLimit> logger)
    {
        _reachedLog = new Telemetry.OncePer(TimeSpan.FromMinutes(1), timeProvider);
        _logger = logger;
        OpenFileLimit = openFileLimit;
        var allowed = FromOpenFileLimit(openFileLimit);
        Limit = maxOpen ?? allowed;
        if (Limit is { } limit)
        {
            _room = new SemaphoreSlim(limit, limit);
        }

        if (maxOpen is { } set && allowed is { } safe && set > safe)
        {
            Log.AboveOpenFileLimit(logger, set, openFileLimit!.Value, safe);
        }
        else if (Limit is { } applied)
        {
            Log.Applied(logger, applied, maxOpen is null ? $"from the open-file limit of {openFileLimit}" : "Gateway:Admission:Connections:MaxOpen");
        }
    }

    /// <summary>Open proxy connections allowed at once; null: no limit (none set and no open-file limit known).</summary>
    public int? Limit { get; }

    /// <summary>The process's open-file limit when it started, if known.</summary>
    public long? OpenFileLimit { get; }

    /// <summary>Proxy connections open now, as this limit counts them (0 without a limit).</summary>
    public int Open => Limit is { } limit ? limit - _room!.CurrentCount : 0;

    /// <summary>
    /// Half of what the open-file limit leaves after the process's own share (<see cref="MinReserve"/>,
    /// or a twentieth of the limit if more): each proxy connection may hold a backend connection too, and the
    /// other half is <see cref="BackendConnectionLimit"/>'s.
    /// Null for no limit ("unlimited", or not known).
    /// </summary>
    internal static int? FromOpenFileLimit(long? openFileLimit)
    {
        if (openFileLimit is not { } files)
        {
            return null;
        }

        return (int)Math.Clamp((files - Reserve(files)) / 2, 1, int.MaxValue);
    }

    /// <summary>What the process keeps for itself of an open-file limit: a twentieth, at least <see cref="MinReserve"/>.</summary>
    internal static long Reserve(long openFileLimit) => Math.Max(MinReserve, openFileLimit / 20);

    /// <summary>Waits until a connection may be accepted, and takes its place.</summary>
    public ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        if (_room is null || _room.Wait(0, CancellationToken.None))
        {
            return ValueTask.CompletedTask;
        }

        if (_reachedLog.Now())
        {
            Log.Reached(_logger, Limit!.Value);
        }

        return new ValueTask(_room.WaitAsync(cancellationToken));
    }

    /// <summary>Gives back a place taken for a connection that was not accepted after all.</summary>
    public void Return() => _room?.Release();

    /// <summary>Gives the accepted connection's place back when its transport closes (its socket is closed by then).</summary>
    public void Track(ConnectionContext connection)
    {
        if (_room is not null)
        {
            connection.ConnectionClosed.Register(static room => ((SemaphoreSlim)room!).Release(), _room);
        }
    }

    /// <summary>The soft "Max open files" of this process, from <c>/proc/self/limits</c>; null if unlimited or unknown.</summary>
    internal static long? ReadOpenFileLimit()
    {
        try
        {
            return OperatingSystem.IsLinux() ? ParseOpenFileLimit(File.ReadAllText("/proc/self/limits")) : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The soft limit on the "Max open files" line of a <c>/proc/PID/limits</c> text.</summary>
    internal static long? ParseOpenFileLimit(string limits)
    {
        const string Name = "Max open files";
        foreach (var line in limits.Split('\n'))
        {
            if (line.StartsWith(Name, StringComparison.Ordinal))
            {
                var soft = line[Name.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
                return long.TryParse(soft, NumberStyles.None, CultureInfo.InvariantCulture, out var files) ? files : null;
            }
        }

        return null;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Open proxy connections are limited to {Limit} ({Source}); at the limit new connections wait in the listen queue until some close.", EventName = "OpenConnectionLimit")]
        public static partial void Applied(ILogger logger, int limit, string source);

        [LoggerMessage(2, LogLevel.Warning, "Gateway:Admission:Connections:MaxOpen is {MaxOpen}, but the open-file limit of {OpenFileLimit} allows about {Allowed} proxy connections: past that, accepting fails and the runtime ends the process when it next starts a thread. Raise the open-file limit (ulimit -n, LimitNOFILE) or lower MaxOpen.", EventName = "OpenConnectionLimitAboveFiles")]
        public static partial void AboveOpenFileLimit(ILogger logger, int maxOpen, long openFileLimit, int allowed);

        [LoggerMessage(3, LogLevel.Warning, "Open proxy connections reached the limit of {Limit}: new connections wait in the listen queue until some close (said at most once a minute). Raise Gateway:Admission:Connections:MaxOpen and the open-file limit, or add replicas.", EventName = "OpenConnectionLimitReached")]
        public static partial void Reached(ILogger logger, int limit);
    }
}
