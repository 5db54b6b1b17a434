namespace YarpGateway.Endpoints;

/// <summary>
/// Options under <c>Gateway:Http2</c>: what an HTTP/2 client may do on the proxy endpoint beyond
/// Kestrel's own limits (set in <see cref="GatewayKestrelSetup.SetHttp2Limits"/>). Read once, at start.
/// </summary>
internal sealed class Http2Options
{
    public const string SectionName = "Gateway:Http2";

    /// <summary>
    /// Streams a client may reset (RST_STREAM, or any way a stream's request is aborted) on one
    /// connection within <see cref="StreamResetWindow"/> before the connection is closed: the HTTP/2
    /// "rapid reset" attack opens and cancels streams as fast as it can, and each one starts a proxied
    /// request. Default 200; 0 turns the limit off.
    /// </summary>
    public int MaxStreamResets { get; set; } = 200;

    /// <summary>The window <see cref="MaxStreamResets"/> counts over. Default 10 s.</summary>
    public TimeSpan StreamResetWindow { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Start-up checks for <see cref="Http2Options"/>.</summary>
internal sealed class Http2OptionsValidator : Microsoft.Extensions.Options.IValidateOptions<Http2Options>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, Http2Options options)
    {
        var errors = new List<string>();
        Configuration.OptionChecks.NotNegative(errors, Http2Options.SectionName + ":MaxStreamResets", options.MaxStreamResets);
        Configuration.OptionChecks.Positive(errors, Http2Options.SectionName + ":StreamResetWindow", options.StreamResetWindow);
        return errors.Count == 0 ? Microsoft.Extensions.Options.ValidateOptionsResult.Success : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(errors);
    }
}
