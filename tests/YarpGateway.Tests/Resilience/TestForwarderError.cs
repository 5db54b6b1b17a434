using Yarp.ReverseProxy.Forwarder;

namespace YarpGateway.Tests.Resilience;

/// <summary>What YARP's forwarder leaves on a failed request (its own feature type is internal).</summary>
internal sealed class TestForwarderError(ForwarderError error, Exception? exception = null) : IForwarderErrorFeature
{
    public ForwarderError Error => error;

    public Exception? Exception => exception;
}
