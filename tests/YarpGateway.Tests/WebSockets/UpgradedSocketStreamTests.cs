using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using YarpGateway.Tests.Functional;
using YarpGateway.WebSockets;

namespace YarpGateway.Tests.WebSockets;

public class UpgradedSocketStreamTests
{
    /// <summary>
    /// What arrived in the same read as the 101 (a backend that speaks first: a greeting, a first state) is read before the
    /// socket, then let go: a WebSocket that then stays idle held it for life (up to a kilobyte, the head's read buffer).
    /// </summary>
    [Fact]
    public async Task WhatCameWithThe101_IsReadFirst_ThenLetGo()
    {
        var (client, backend) = await ConnectedPairAsync();
        using var backendSide = backend;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));

        var (stream, early) = Create(client);
        await using (stream)
        {
            Assert.Equal(0, await stream.ReadAsync(Memory<byte>.Empty, timeout.Token)); // data is there: no wait
            var buffer = new byte[600];
            Assert.Equal(600, await stream.ReadAsync(buffer, timeout.Token));
            Assert.Equal(400, await stream.ReadAsync(buffer, timeout.Token));
            Assert.Equal(7, buffer[399]);

            Assert.True(await Eventually.TrueAsync(() => { GC.Collect(); GC.WaitForPendingFinalizers(); return !early.IsAlive; }, TimeSpan.FromSeconds(5)), "the early bytes are still held");

            // Then the socket's own bytes.
            await backend.SendAsync("next"u8.ToArray());
            Assert.Equal(4, await stream.ReadAsync(buffer, timeout.Token));
            Assert.Equal("next"u8.ToArray(), buffer[..4]);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // the array must not stay in a local of the test's own frame
    private static (UpgradedSocketStream Stream, WeakReference Early) Create(Socket socket)
    {
        var early = new byte[1000];
        early.AsSpan().Fill(7);
        return (new UpgradedSocketStream(socket, early), new WeakReference(early));
    }

    /// <summary>
    /// A write goes out whole, and the socket does not keep the buffer it was sent from: Socket.SendAsync keeps its send
    /// operation, and with it the last buffer, for the socket's next send. The relay sends from a buffer rented from the
    /// shared pool and given back: one the pool let go of stayed pinned, up to 64 KiB, for as long as the WebSocket sent
    /// nothing more.
    /// </summary>
    [Fact]
    public async Task AWrite_IsSentWhole_AndItsBufferNotKeptByTheSocket()
    {
        var (client, backend) = await ConnectedPairAsync();
        using var backendSide = backend;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var stream = new UpgradedSocketStream(client, []);

        var sent = await WriteAsync(stream, 100_000, timeout.Token);

        var received = new byte[100_000];
        var length = 0;
        while (length < received.Length)
        {
            length += await backend.ReceiveAsync(received.AsMemory(length), SocketFlags.None, timeout.Token);
        }

        Assert.All(received, b => Assert.Equal(9, b));
        Assert.True(await Eventually.TrueAsync(() => { GC.Collect(); GC.WaitForPendingFinalizers(); return !sent.IsAlive; }, TimeSpan.FromSeconds(5)), "the socket keeps the buffer it sent from");

        // And the stream still writes.
        await stream.WriteAsync("more"u8.ToArray(), timeout.Token);
        Assert.Equal(4, await backend.ReceiveAsync(received, SocketFlags.None, timeout.Token));
    }

    /// <summary>
    /// The relay closes the backend's side while a write to it waits (a backend that does not read, the client's side
    /// gone): the write fails, and the send's completion, which comes after its operation was disposed, throws nothing
    /// where nobody would catch it (that would end the process).
    /// </summary>
    [Fact]
    public async Task DisposedWhileAWriteWaits_TheWriteFails_AndNothingElse()
    {
        var (client, backend) = await ConnectedPairAsync();
        using var backendSide = backend; // never reads
        var stream = new UpgradedSocketStream(client, []);
        var unhandled = 0;
        UnhandledExceptionEventHandler watch = (_, _) => Interlocked.Increment(ref unhandled);
        AppDomain.CurrentDomain.UnhandledException += watch;
        try
        {
            var writing = stream.WriteAsync(new byte[64 * 1024 * 1024]).AsTask(); // more than the kernel's buffers on both sides
            Assert.False(writing.IsCompleted);
            await stream.DisposeAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => writing.WaitAsync(TimeSpan.FromSeconds(10)));
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Assert.Equal(0, Volatile.Read(ref unhandled));
        }
        finally
        {
            AppDomain.CurrentDomain.UnhandledException -= watch;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static async Task<WeakReference> WriteAsync(UpgradedSocketStream stream, int length, CancellationToken cancellationToken)
    {
        var data = new byte[length];
        data.AsSpan().Fill(9);
        await stream.WriteAsync(data, cancellationToken);
        return new WeakReference(data);
    }

    /// <summary>Two connected loopback TCP sockets: the gateway's side (the caller disposes it, or a stream that owns it) and the backend's.</summary>
    internal static async Task<(Socket Gateway, Socket Backend)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        var gateway = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await gateway.ConnectAsync(listener.LocalEndPoint!);
        return (gateway, await listener.AcceptAsync());
    }
}
