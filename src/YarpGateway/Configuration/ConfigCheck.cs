namespace YarpGateway.Configuration;

/// <summary>
/// <c>--check</c>: reads the configuration as the gateway would start with it (the same environment, files, variables
/// and command line), runs every check start-up runs, and exits, as <c>nginx -t</c> does: 0 with a line saying what it
/// would serve, or 1 with every error listed as a failed start lists them. It binds no port and starts nothing, so a
/// pipeline can test a ConfigMap before it ships, and an operator a file before saving it over the one a gateway reads.
/// </summary>
internal static class ConfigCheck
{
    public const string Switch = "--check";

    /// <summary>
    /// Whether <paramref name="args"/> ask for a check; <paramref name="rest"/> is them without it (the command-line
    /// configuration would read a bare <c>--check</c> as a key whose value is the next argument: <c>--config</c>).
    /// </summary>
    public static bool Requested(string[] args, out string[] rest)
    {
        // --check=true too: read as an ordinary setting, it started a gateway that served and never exited (a pipeline's
        // step would have hung).
        rest = [.. args.Where(arg => !arg.Equals(Switch, StringComparison.OrdinalIgnoreCase) && !arg.Equals(Switch + "=true", StringComparison.OrdinalIgnoreCase))];
        return rest.Length != args.Length;
    }

    /// <summary>
    /// For a check, the log at Warning: what start-up logs as it goes is not the verdict. Rules of its own, after those of
    /// the configuration, not settings on the command line: those would hide the file's own <c>Logging:LogLevel</c> values
    /// from the check (a level that is not one passed the check and failed the start).
    /// </summary>
    public static void Quiet(ILoggingBuilder logging)
        => logging.AddFilter(category: null, LogLevel.Warning).AddFilter("YarpGateway", LogLevel.Warning);

    /// <summary>Checks, and writes the verdict to <paramref name="output"/>; returns the exit code (0).</summary>
    /// <exception cref="GatewayConfigurationException">Every error, as a failed start would list them (exit code 1).</exception>
    public static async Task<int> RunAsync(WebApplication app, TextWriter output, CancellationToken cancellationToken = default)
    {
        await app.ValidateGatewayAsync(cancellationToken);
        var proxy = app.Services.GetRequiredService<GatewayConfigProvider>().GetConfig();
        var files = app.Configuration is IConfigurationRoot root
            ? root.Providers.OfType<LastGoodJsonConfigurationSource.Provider>().Select(file => file.ExistingFilePath).OfType<string>().ToList()
            : [];
        await output.WriteLineAsync(
            $"The configuration is valid: {proxy.Routes.Count} route(s), {proxy.Clusters.Count} cluster(s), read from {(files.Count > 0 ? string.Join(", ", files) : "no file")} in the {app.Environment.EnvironmentName} environment.");

        // Taken by start-up, so no error; but a typo's setting changes nothing, which is what a check is for.
        var metadataKeys = UnknownSettings.MetadataKeysOf(app.Services.GetServices<IProxyConfigRule>());
        if (UnknownSettings.Find(app.Configuration, app.Services.GetRequiredService<UnknownSettings.Schema>(), metadataKeys) is { Count: > 0 } unknown)
        {
            await output.WriteLineAsync($"Warning: {unknown.Count} setting(s) are read by neither the gateway nor YARP, so they change nothing: {string.Join(", ", unknown)}.");
        }

        return 0;
    }
}
