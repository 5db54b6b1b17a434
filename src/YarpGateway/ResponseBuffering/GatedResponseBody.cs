using Microsoft.AspNetCore.Http.Features;

namespace YarpGateway.ResponseBuffering;

/// <summary>
/// The response body feature while a <see cref="ResponseWriteGate"/> is in place: YARP writes through the gate
/// (<see cref="StreamResponseBodyFeature.Stream"/>), and <see cref="CompleteAsync"/> ends the response itself, after
/// the gate's last write, as the feature it replaces would. ASP.NET Core's own stream feature, which setting
/// <c>HttpResponse.Body</c> installs, completes only what it wraps: YARP's early completion of a gRPC call's answer
/// (its status sent before YARP waits for the rest of the client's stream) then did nothing for a streamed answer,
/// and a service that ended the call while still busy, its stream unread, left the client without its status until
/// the client ended its own stream or YARP's activity timeout (100 s) passed. The same for
/// <see cref="RequestFiltering.RefusedBodyDrain"/>, which completes an early answer before it reads the rest of the
/// body: an answer of unknown length ended only after that reading (up to 30 s, or the client's whole upload).
/// </summary>
internal sealed class GatedResponseBody(Stream output, IHttpResponseBodyFeature replaced) : StreamResponseBodyFeature(output, replaced)
{
    private bool _completed;

    public override async Task CompleteAsync()
    {
        if (_completed)
        {
            return;
        }

        _completed = true;
        await base.CompleteAsync();
        await Stream.FlushAsync(); // waits for the gate's last write to reach the response's pipe
        await PriorFeature!.CompleteAsync();
    }
}
