using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using YarpGateway.Health;

namespace YarpGateway.Tests.Health;

public class DrainNoticeTests
{
    [Fact]
    public void AConnectionClosingAsShutdownBegins_IsSkipped_TheOthersStillGetGoAway()
    {
        var closing = new DefaultConnectionContext("closing");
        closing.Features.Set<ITlsApplicationProtocolFeature>(new DisposedTls()); // its SslStream already disposed
        var http2 = new DefaultConnectionContext("h2");
        http2.Features.Set<ITlsApplicationProtocolFeature>(new Http2Tls());
        var lifetime = new RecordingLifetime();
        http2.Features.Set<IConnectionLifetimeNotificationFeature>(lifetime);

        var goAway = new DrainNotice().Begin([closing, http2]);

        Assert.Equal(1, goAway);
        Assert.True(lifetime.CloseRequested);
    }

    private sealed class DisposedTls : ITlsApplicationProtocolFeature
    {
        public ReadOnlyMemory<byte> ApplicationProtocol => throw new ObjectDisposedException("System.Net.Security.SslStream");
    }

    private sealed class Http2Tls : ITlsApplicationProtocolFeature
    {
        public ReadOnlyMemory<byte> ApplicationProtocol => System.Net.Security.SslApplicationProtocol.Http2.Protocol;
    }

    private sealed class RecordingLifetime : IConnectionLifetimeNotificationFeature
    {
        public CancellationToken ConnectionClosedRequested { get; set; }

        public bool CloseRequested { get; private set; }

        public void RequestClose() => CloseRequested = true;
    }
}
