namespace YarpGateway.Admission;

/// <summary>
/// Requests on proxy connections past their first (a keep-alive client's next request, an HTTP/2 connection's later
/// streams), counted as they begin: the traffic the adaptive connection rate protects. While it comes at
/// <see cref="AdaptiveAdmissionOptions.EstablishedRequestRate"/> a second or more, new connections are held to
/// <see cref="AdaptiveAdmissionOptions.EstablishedTargetDelay"/>; a churn of new connections alone (clients that
/// close after each request) has nobody to protect, and keeps <see cref="AdaptiveAdmissionOptions.TargetDelay"/>.
/// A connection's first request is the one that finds its <see cref="FirstRequestGate"/>: with neither a first-request
/// cap nor an accept window, connections get no gate, and every request counts.
/// </summary>
internal sealed class EstablishedRequests
{
    private long _total;

    /// <summary>Requests counted since start; readers take the difference between two reads.</summary>
    public long Total => Interlocked.Read(ref _total);

    public void Count() => Interlocked.Increment(ref _total);
}
