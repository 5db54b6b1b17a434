using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Telemetry;

/// <summary>
/// How late the socket engine is: every 100 ms a dedicated thread sends one byte over a loopback
/// connection the gateway holds to itself, and the time until the receive completes and its
/// continuation runs is recorded in <c>gateway.scheduler.socket_delay</c>. With inline socket
/// completions (the shipped default) that continuation runs on the socket engine's thread, which is
/// where requests are processed with one CPU and where the thread-pool probe cannot see a backlog.
/// The probe's connection sits on one of the runtime's socket engines (there is one per few CPUs).
/// </summary>
internal sealed partial class SocketEngineProbe(SchedulerMetrics metrics, TimeProvider timeProvider, ILogger<SocketEngineProbe> logger) : IHostedService, IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);
    private readonly Histogram<double> _delay = metrics.SocketDelay;
    private readonly CancellationTokenSource _stop = new();
    private readonly ManualResetEventSlim _stopped = new();
    private Thread? _thread;
    private Socket? _sender;
    private Socket? _receiver;
    private long _sentAt;
    private long _maxSinceTakeTicks;
    private int _disposed;
    private int _dead; // the receive loop ended: no sample is pending any more

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen(1);
            _sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var accept = listener.AcceptAsync(cancellationToken);
            await _sender.ConnectAsync(listener.LocalEndPoint!, cancellationToken);
            _receiver = await accept;
        }
        catch (SocketException ex)
        {
            Log.Unavailable(logger, ex.Message); // the thread-pool probe and the first-request wait still measure
            _sender?.Dispose();
            _sender = null;
            return;
        }

        _ = ReceiveAsync(_receiver);
        _thread = new Thread(static state => ((SocketEngineProbe)state!).Send()) { IsBackground = true, Name = "gateway-socket-probe" };
        _thread.Start(this);
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            _stop.Cancel();
            _stopped.Set();
        }

        return Task.CompletedTask;
    }

    /// <summary>The longest delay recorded since the last call (zero when none was).</summary>
    public TimeSpan TakeMaxDelay() => TimeSpan.FromTicks(Interlocked.Exchange(ref _maxSinceTakeTicks, 0));

    /// <summary>How long the byte in flight has been waiting for its receive (zero when none is): grows while the engine is stuck.</summary>
    public TimeSpan Pending()
    {
        var sent = Volatile.Read(ref _sentAt);
        return sent == 0 || Volatile.Read(ref _dead) != 0 ? TimeSpan.Zero : timeProvider.GetElapsedTime(sent);
    }

    private void Send()
    {
        byte[] one = [1];
        while (!_stopped.Wait(Interval))
        {
            // One byte in flight at a time: the delay is measured from the first unanswered send.
            if (Interlocked.CompareExchange(ref _sentAt, timeProvider.GetTimestamp(), 0) != 0)
            {
                continue;
            }

            try
            {
                _sender!.Send(one);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }
        }
    }

    private async Task ReceiveAsync(Socket receiver)
    {
        var buffer = new byte[64];
        try
        {
            while (await receiver.ReceiveAsync(buffer, SocketFlags.None, _stop.Token) > 0)
            {
                var sent = Interlocked.Exchange(ref _sentAt, 0);
                if (sent == 0)
                {
                    continue;
                }

                var elapsed = timeProvider.GetElapsedTime(sent);
                _delay.Record(elapsed.TotalSeconds);
                for (var seen = Volatile.Read(ref _maxSinceTakeTicks); elapsed.Ticks > seen;)
                {
                    var previous = Interlocked.CompareExchange(ref _maxSinceTakeTicks, elapsed.Ticks, seen);
                    if (previous == seen)
                    {
                        break;
                    }

                    seen = previous;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            Volatile.Write(ref _dead, 1);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return; // registered as itself and as a hosted service: the container disposes it twice
        }

        _stop.Cancel();
        _stopped.Set();
        _sender?.Dispose();
        _receiver?.Dispose();
        _stop.Dispose();

        // The sending thread may be inside _stopped.Wait: disposing the event under it would throw on that thread and
        // end the process (as SchedulerDelayProbe's did). Set has woken it; dispose once it has left.
        if (_thread is null || _thread.Join(TimeSpan.FromSeconds(5)))
        {
            _stopped.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "The socket-engine probe could not open its loopback connection ({Reason}); connection admission reads the thread-pool probe and first-request waits only.", EventName = "SocketProbeUnavailable")]
        public static partial void Unavailable(ILogger logger, string reason);
    }
}
