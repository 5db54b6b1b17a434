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
}
