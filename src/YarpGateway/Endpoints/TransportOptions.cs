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
    /// transport's <c>MaxWriteBufferSize</c>). Default (unset): Kestrel's 64 KiB. It is what a client
    /// that stops reading pins in Kestrel, below the WebSocket relay's own <c>OutboundBufferBytes</c>:
    /// 16 KiB took a never-reading WebSocket client from 167 to 136 KiB of RSS, but cut 1 MiB responses
    /// from about 0.85 GB/s to about 90 MB/s on one core (docs/performance-history.md). For a gateway
    /// that carries WebSockets and small responses only. From 4096 to 16 MiB.
    /// </summary>
    public int? MaxWriteBufferSize { get; set; }

    internal const int MinWriteBufferSize = 4096;
    internal const int MaxWriteBufferSizeLimit = 16 * 1024 * 1024;
}

/// <summary>Start-up checks for <see cref="TransportOptions"/>.</summary>
internal sealed class TransportOptionsValidator : Microsoft.Extensions.Options.IValidateOptions<TransportOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, TransportOptions options)
        => options.MaxWriteBufferSize is { } size and (< TransportOptions.MinWriteBufferSize or > TransportOptions.MaxWriteBufferSizeLimit)
            ? Microsoft.Extensions.Options.ValidateOptionsResult.Fail($"{TransportOptions.SectionName}:MaxWriteBufferSize must be from {TransportOptions.MinWriteBufferSize} to {TransportOptions.MaxWriteBufferSizeLimit} bytes; got {size}.")
            : Microsoft.Extensions.Options.ValidateOptionsResult.Success;
}
