namespace YarpGateway.Endpoints;

/// <summary>Options under <c>Gateway:Transport</c>: how Kestrel's socket transport runs work. Read once, at start.</summary>
internal sealed class TransportOptions
{
    public const string SectionName = "Gateway:Transport";

    /// <summary>
    /// Run request processing on the socket thread that read the request instead of handing it to
    /// the thread pool (Kestrel's <c>UnsafePreferInlineScheduling</c>). Default (unset): on when the
    /// process has one CPU and socket completions are inline, off otherwise. Measured in docs/performance-history.md.
    /// </summary>
    public bool? InlineScheduling { get; set; }

    /// <summary>
    /// Bytes Kestrel queues for one connection's socket before a write to it waits (the socket
    /// transport's <c>MaxWriteBufferSize</c>). Default <see cref="DefaultWriteBufferSize"/>, 16 KiB
    /// (Kestrel's own is 64 KiB; HAProxy's buffers are 16 KiB too). It is what a client that stops
    /// reading pins in Kestrel, below a WebSocket relay's own <c>OutboundBufferBytes</c>: 16 KiB took
    /// a never-reading WebSocket client from 135 to 79 KiB of RSS, with 1 MiB responses (HTTP/1.1,
    /// h2c and TLS) as fast as at 64 KiB; the kernel's socket buffer, not this queue, is what keeps
    /// a fast network busy (docs/performance-history.md). From 4096 to 16 MiB.
    /// </summary>
    public int? MaxWriteBufferSize { get; set; }

    /// <summary>
    /// Bytes Kestrel reads from one connection's socket ahead of the application (the socket
    /// transport's <c>MaxReadBufferSize</c>): past it, the gateway stops reading that socket until
    /// the bytes are forwarded. Default <see cref="DefaultReadBufferSize"/>, 64 KiB (Kestrel's own is
    /// 1 MiB). It is what an upload pins in the gateway while its backend does not read it (stalled,
    /// or answering before it reads the body): at 1 MiB, 300 such uploads cost 369 MB of RSS. The
    /// kernel's socket buffer, not this one, keeps a fast upload going. From 64 KiB (room for the
    /// request line and headers Kestrel must hold at once, 8 + 32 KiB) to 16 MiB.
    /// </summary>
    public int? MaxReadBufferSize { get; set; }

    /// <summary>
    /// Connections the kernel may hold accepted-but-not-yet-taken for a listening socket (the socket
    /// transport's <c>Backlog</c>). Default <see cref="DefaultBacklog"/> (Kestrel's own is 512). In a
    /// reconnect storm a full queue makes the kernel drop the clients' handshakes, and each dropped
    /// client waits a second or more to try again; a long queue lets every connection in for
    /// connection admission to pace. The kernel caps it at <c>net.core.somaxconn</c>. From 1 to 65535.
    /// </summary>
    public int? Backlog { get; set; }

    internal const int DefaultBacklog = 4096;
    internal const int MaxBacklog = 65535;

    internal const int DefaultReadBufferSize = 64 * 1024;
    internal const int MinReadBufferSize = 64 * 1024;

    internal const int DefaultWriteBufferSize = 16 * 1024;
    internal const int MinWriteBufferSize = 4096;
    internal const int MaxWriteBufferSizeLimit = 16 * 1024 * 1024;
}

/// <summary>Start-up checks for <see cref="TransportOptions"/>.</summary>
internal sealed class TransportOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<TransportOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, TransportOptions options)
    {
        var errors = new List<string>();
        if (options.MaxWriteBufferSize is { } size and (< TransportOptions.MinWriteBufferSize or > TransportOptions.MaxWriteBufferSizeLimit))
        {
            errors.Add($"{TransportOptions.SectionName}:MaxWriteBufferSize must be from {TransportOptions.MinWriteBufferSize} to {TransportOptions.MaxWriteBufferSizeLimit} bytes; got {size}.");
        }

        if (options.MaxReadBufferSize is { } read and (< TransportOptions.MinReadBufferSize or > TransportOptions.MaxWriteBufferSizeLimit))
        {
            errors.Add($"{TransportOptions.SectionName}:MaxReadBufferSize must be from {TransportOptions.MinReadBufferSize} to {TransportOptions.MaxWriteBufferSizeLimit} bytes (the request line and headers must fit); got {read}.");
        }

        if (options.Backlog is { } backlog and (< 1 or > TransportOptions.MaxBacklog))
        {
            errors.Add($"{TransportOptions.SectionName}:Backlog must be from 1 to {TransportOptions.MaxBacklog}; got {backlog}.");
        }

        return errors.Count == 0 ? Microsoft.Extensions.Options.ValidateOptionsResult.Success : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(errors);
    }
}
