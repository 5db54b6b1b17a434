using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace YarpGateway.Health;

/// <summary>
/// SIGHUP, SIGUSR1 and SIGUSR2 from the process's first moments until the services that answer them have started
/// (<see cref="Configuration.ConfigReloadSignal"/>, <see cref="UserSignals"/>): held, and counted, instead of left to
/// the runtime's default, which ends the process at once. Tried: a SIGHUP sent as the gateway wrote its first log
/// line ended it with code 129 every time, before it ever listened; a config reloader that signals as soon as it
/// sees a file, a logrotate script's SIGUSR1, or an operator's <c>kill -HUP</c> during a slow start (a large
/// configuration) would have put the pod in a crash loop. Called first in <c>Program</c>; what the runtime does
/// before that (tens of milliseconds) is out of reach.
/// </summary>
internal static class EarlySignals
{
    private static readonly ConcurrentDictionary<PosixSignal, Held> s_held = new();

    public static void HoldUntilStarted()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // SIGHUP stands for the console window closing there, which must still end the process
        }

        Hold(PosixSignal.SIGHUP);
        if (OperatingSystem.IsLinux())
        {
            foreach (var (number, _) in UserSignals.Ignored)
            {
                Hold((PosixSignal)number);
            }
        }
    }

    /// <summary>
    /// The signal's own service has registered its handler: the early hold goes. Returns how many times the signal
    /// arrived before (0 when nothing was held, as in a gateway composed in a test).
    /// </summary>
    public static int TakeOver(PosixSignal signal)
    {
        if (!s_held.TryRemove(signal, out var held))
        {
            return 0;
        }

        held.Registration.Dispose();
        return Volatile.Read(ref held.Count);
    }

    private static void Hold(PosixSignal signal)
    {
        var held = new Held();
        if (s_held.TryAdd(signal, held))
        {
            held.Registration = PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                Interlocked.Increment(ref held.Count);
            });
        }
    }

    private sealed class Held
    {
        public PosixSignalRegistration Registration = null!;
        public int Count;
    }
}
