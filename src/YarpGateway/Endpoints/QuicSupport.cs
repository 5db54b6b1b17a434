namespace YarpGateway.Endpoints;

/// <summary>Whether this machine can speak QUIC, which HTTP/3 runs over: .NET's System.Net.Quic needs libmsquic.</summary>
internal static class QuicSupport
{
    public static bool IsAvailable
        => (OperatingSystem.IsLinux() || OperatingSystem.IsWindows() || OperatingSystem.IsMacOS()) && System.Net.Quic.QuicListener.IsSupported
            && System.Net.Quic.QuicConnection.IsSupported;
}
