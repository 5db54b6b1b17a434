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

    /// <summary>
    /// Forward request paths that hold a backslash, sent as it is or escaped (<c>/users/CORP%5Cjdoe</c>). Default false:
    /// they get 400, since Windows' HTTP server reads a backslash as <c>/</c>. A backslash that sets off a dot segment
    /// (<c>/public/..%5Cadmin</c>) gets 400 either way. See <see cref="AmbiguousPaths"/>.
    /// </summary>
    public bool BackslashesInPaths { get; set; }

    /// <summary>
    /// Forward request paths that hold an encoded slash (<c>%2F</c>), as sent. Default true, as nginx does: APIs put
    /// <c>/</c> in identifiers (<c>/projects/group%2Fproject</c>). False: they get 400, for routes whose policies guard a path
    /// prefix in front of backends that decode <c>%2F</c> (nginx does). See <see cref="AmbiguousPaths"/>.
    /// </summary>
    public bool EncodedSlashesInPaths { get; set; } = true;

    /// <summary>
    /// Forward request paths that hold a <c>;</c> (or <c>%3B</c>), a path parameter to some servers. Default true, as nginx
    /// does: old Java applications keep their session in the path (<c>;jsessionid=</c>). False: they get 400, for routes
    /// whose policies guard a path prefix in front of Tomcat or Jetty, which read <c>/admin;x=1/secret</c> as
    /// <c>/admin/secret</c>. A dot segment with a parameter (<c>/public/..;/admin</c>) gets 400 either way. See
    /// <see cref="AmbiguousPaths"/>.
    /// </summary>
    public bool SemicolonsInPaths { get; set; } = true;
}
