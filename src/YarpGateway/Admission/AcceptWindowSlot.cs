namespace YarpGateway.Admission;

/// <summary>
/// A place in the accept window (<see cref="ConnectionAdmissionOptions.AcceptWindow"/>): taken by a paced listener
/// before it accepts, so the listener holds it while it waits for the connection; once that connection has it
/// (<see cref="TakenBy"/>), it is given back once, when the connection's first request goes to a backend while the
/// window keeps up (<see cref="AcceptWindow.KeepingUp"/>), its first response starts, the connection ends,
/// it is not admitted, or <see cref="ConnectionAdmissionOptions.MaxFirstRequestTime"/> passes, from its first bytes
/// or, while it sends nothing, from its accept (the <see cref="FirstRequestGate"/> that carries it, or the wait for
/// its first bytes, bounds that).
/// </summary>
internal sealed class AcceptWindowSlot(AcceptWindow window, AcceptWindowSlot.IHolders holders)
{
    private int _released;
    private bool _held;

    /// <summary>Counts the places connections hold (not those the listeners hold for their next connection).</summary>
    internal interface IHolders
    {
        void Took();

        void Gave();
    }

    /// <summary>Whether the window lets the place go when the first request goes to a backend (<see cref="AcceptWindow.KeepingUp"/>).</summary>
    public bool GivenBackOnForward => window.KeepingUp;

    /// <summary>The accepted connection has the place now.</summary>
    public void TakenBy()
    {
        _held = true;
        holders.Took();
    }

    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            window.Give();
            if (_held)
            {
                holders.Gave();
            }
        }
    }
}
