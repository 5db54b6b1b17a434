using System.Collections.Concurrent;
using System.Text;

namespace YarpGateway.Telemetry;

/// <summary>
/// Writes the access log's lines to standard output in batches, off the requests' threads: a request queues its line and
/// goes on; a writer wakes every <see cref="FlushInterval"/>, or sooner once <see cref="BatchLines"/> are queued, and writes
/// what is queued in writes of at most <see cref="MaxWrite"/> bytes, each ending at a line's end (a pipe's write of up to
/// 4 KiB is never interleaved with another process's or thread's, so the logger's own lines on the same stream never land
/// inside an access line).
/// <para>
/// Through the logger (one line per message, its writer thread woken for each and a write per line), the access log cost
/// 26 µs of CPU per request and halved the requests a second on one core (the performance history). Past
/// <see cref="MaxQueued"/> lines waiting (a log pipeline that stopped reading), lines are dropped and counted, and the count
/// is logged at most once a second: requests never wait for the log, and it never holds more than that.
/// </para>
/// </summary>
internal sealed partial class AccessLogWriter : IHostedService, IAsyncDisposable
{
    internal const int MaxWrite = 4096;
    internal const int BatchLines = 256;
    internal const int MaxQueued = 16_384;
    internal static readonly TimeSpan FlushInterval = TimeSpan.FromMilliseconds(200);

    private readonly Stream _output;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger<AccessLogWriter> _logger;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _buffer = new byte[MaxWrite];
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly Lock _startLock = new();
    private volatile Task? _loop;
    private int _started;
    private int _queued;
    private long _dropped;
    private long _droppedLogged;
    private long _lastDropLog;
    private int _disposed;

    public AccessLogWriter(Stream output, TimeProvider timeProvider, ILogger<AccessLogWriter> logger)
    {
        _output = output;
        _timeProvider = timeProvider;
        _logger = logger;
    }

    /// <summary>Lines dropped since start because <see cref="MaxQueued"/> were waiting.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues one line (without its line end); false when it was dropped.</summary>
    public bool Enqueue(string line)
    {
        var queued = Interlocked.Increment(ref _queued);
        if (queued > MaxQueued)
        {
            Interlocked.Decrement(ref _queued);
            Interlocked.Increment(ref _dropped);
            return false;
        }

        _lines.Enqueue(line);
        if (_loop is null && Volatile.Read(ref _started) == 1)
        {
            StartWriting();
        }

        if (queued == BatchLines && _wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // woken already
            }
            catch (ObjectDisposedException)
            {
                // a request that ended after the writer was disposed: its line is not written, and the request is not failed for it
            }
        }

        return true;
    }

    /// <summary>The writer starts with the first line: a gateway whose access log is off never wakes it.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Volatile.Write(ref _started, 1);
        if (!_lines.IsEmpty)
        {
            StartWriting();
        }

        return Task.CompletedTask;
    }

    private void StartWriting()
    {
        lock (_startLock)
        {
            if (Volatile.Read(ref _disposed) == 0)
            {
                _loop ??= RunAsync(_stop.Token);
            }
        }
    }

    /// <summary>Nothing: requests that end while Kestrel drains still get their lines, written until the container disposes this.</summary>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task RunAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(FlushInterval, stop);
                await FlushAsync(stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                Log.WriteFailed(_logger, ex.Message);
                return; // standard output is gone: nothing more can be written
            }
        }
    }

    /// <summary>Writes every line queued now.</summary>
    internal async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _writing.WaitAsync(cancellationToken);
        try
        {
            var used = 0;
            while (_lines.TryDequeue(out var line))
            {
                Interlocked.Decrement(ref _queued);
                var length = Encoding.UTF8.GetByteCount(line) + 1;
                if (used + length > MaxWrite && used > 0)
                {
                    await _output.WriteAsync(_buffer.AsMemory(0, used), cancellationToken);
                    used = 0;
                }

                if (length > MaxWrite)
                {
                    await _output.WriteAsync(Encoding.UTF8.GetBytes(line + "\n"), cancellationToken); // one line alone
                    continue;
                }

                used += Encoding.UTF8.GetBytes(line, _buffer.AsSpan(used));
                _buffer[used++] = (byte)'\n';
            }

            if (used > 0)
            {
                await _output.WriteAsync(_buffer.AsMemory(0, used), cancellationToken);
                await _output.FlushAsync(cancellationToken);
            }
        }
        finally
        {
            _writing.Release();
        }

        var dropped = Dropped;
        if (dropped > _droppedLogged && _timeProvider.GetElapsedTime(_lastDropLog) >= LogThrottle.Window)
        {
            Log.Dropped(_logger, dropped - _droppedLogged, MaxQueued);
            _droppedLogged = dropped;
            _lastDropLog = _timeProvider.GetTimestamp();
        }
    }

    /// <summary>After the host has stopped (every request ended): the writer ends, and what is still queued is written.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_startLock)
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 1)
            {
                return; // the container disposes it once as itself and once as a hosted service
            }
        }

        await _stop.CancelAsync();
        if (_loop is { } loop)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        try
        {
            await FlushAsync(CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // standard output is gone: nothing more can be written
        }

        _stop.Dispose();
        _wake.Dispose();
        _writing.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Dropped} access log lines dropped: {MaxQueued} were waiting to be written to standard output, which is not read fast enough (requests never wait for the access log).", EventName = "AccessLogDropped")]
        public static partial void Dropped(ILogger logger, long dropped, int maxQueued);

        [LoggerMessage(2, LogLevel.Error, "The access log can no longer write to standard output ({Error}); its lines are dropped from now on.", EventName = "AccessLogWriteFailed")]
        public static partial void WriteFailed(ILogger logger, string error);
    }
}
