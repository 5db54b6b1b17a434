namespace YarpGateway.RequestFiltering;

/// <summary><c>Gateway:RequestFiltering</c>: what of a client's request the gateway does not pass on. Read at start-up.</summary>
internal sealed class RequestFilteringOptions
{
    public const string SectionName = "Gateway:RequestFiltering";

    /// <summary>
    /// Forward request headers whose names hold an underscore (<c>X_Forwarded_For</c>). Default false: they are
    /// dropped, as nginx does (<c>underscores_in_headers off</c>). See <see cref="HeadersWithUnderscores"/>.
    /// </summary>
    public bool UnderscoresInHeaders { get; set; }
}
