using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace YarpGateway.Endpoints;

/// <summary>
/// The client's address as the gateway uses it. On a dual-stack socket (the shipped <c>http://*:8080</c>) Kestrel gives
/// an IPv4 client the address <c>::ffff:a.b.c.d</c>; YARP's <c>X-Forwarded-For</c> writes it as IPv4, but everything
/// else that reads the connection's address wrote it as it came: <c>X-Real-IP: ::ffff:203.0.113.7</c> reached every
/// backend for every IPv4 client (an IPv4 allow-list or geo lookup there misses it). Set once per connection, before
/// Kestrel makes the request's connection info from it.
/// </summary>
internal static class ClientEndPoint
{
    public static void UseIPv4ForIPv4Clients(ConnectionContext connection)
    {
        if (connection.RemoteEndPoint is IPEndPoint { Address.IsIPv4MappedToIPv6: true } mapped)
        {
            connection.RemoteEndPoint = new IPEndPoint(mapped.Address.MapToIPv4(), mapped.Port);
        }
    }

    /// <summary>
    /// One client's key, for what is counted per client (rate-limit partitions, open connections): an IPv4 address as
    /// is; an IPv6 address by its /64, which one client usually holds whole (and can pick addresses from at will).
    /// </summary>
    public static string Key(IPAddress? address)
    {
        if (address is null)
        {
            return string.Empty;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }
}
