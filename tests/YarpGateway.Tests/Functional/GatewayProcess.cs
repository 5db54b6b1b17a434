using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace YarpGateway.Tests.Functional;

/// <summary>Runs the real gateway binary (the one next to the tests) as a child process.</summary>
internal sealed partial class GatewayProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private GatewayProcess(Process process)
    {
        _process = process;
    }

    public string StandardOutput
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>
    /// A native AOT build of the gateway to run instead of <c>dotnet YarpGateway.dll</c> (<c>GATEWAY_TEST_EXE</c>, set by
    /// <c>tests/aot/check.sh</c>, which runs the tests that start the gateway as a process against that build); null: the
    /// build next to the tests.
    /// </summary>
    public static string? Executable { get; } = Environment.GetEnvironmentVariable("GATEWAY_TEST_EXE") is { Length: > 0 } path ? path : null;

    /// <summary>The real binary in Production with <paramref name="configPath"/> as its --config file and both endpoints on loopback port 0.</summary>
    public static GatewayProcess StartOnLoopback(string configPath, params string[] extraArgs)
        => Start("Production", ["--config", configPath, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0", .. extraArgs]);

    /// <summary>As <see cref="StartOnLoopback"/>, with the process's open-file limit (soft and hard) set to <paramref name="files"/>.</summary>
    public static GatewayProcess StartOnLoopbackWithOpenFileLimit(int files, string configPath, params string[] extraArgs)
        => Start("Production", new Dictionary<string, string>(), files, ["--config", configPath, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0", .. extraArgs]);

    public static GatewayProcess Start(string environment, params string[] args) => Start(environment, new Dictionary<string, string>(), args);

    /// <summary>
    /// As <see cref="Start(string, string[])"/>, as an unprivileged user: <c>nobody</c> (through
    /// <c>setpriv</c>) when the tests run as root, who may read any file; the current user otherwise.
    /// </summary>
    public static GatewayProcess StartUnprivileged(string environment, params string[] args)
        => Environment.UserName == "root"
            ? Start(environment, new Dictionary<string, string>(), openFileLimit: null, args, asUser: 65534)
            : Start(environment, args);

    /// <summary>As <see cref="Start(string, string[])"/>, with more environment variables for the process (an empty value: left out).</summary>
    public static GatewayProcess Start(string environment, IReadOnlyDictionary<string, string> variables, params string[] args)
        => Start(environment, variables, openFileLimit: null, args);

    private static GatewayProcess Start(string environment, IReadOnlyDictionary<string, string> variables, int? openFileLimit, string[] args, int? asUser = null)
    {
        string[] gateway = Executable is { } executable ? [executable] : ["dotnet", Path.Combine(AppContext.BaseDirectory, "YarpGateway.dll")];
        var start = new ProcessStartInfo(asUser is not null ? "setpriv" : openFileLimit is null ? gateway[0] : "bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(), // the binary must find its appsettings from anywhere
        };
        if (asUser is { } user)
        {
            var id = user.ToString(System.Globalization.CultureInfo.InvariantCulture);
            foreach (var argument in new[] { "--reuid=" + id, "--regid=" + id, "--clear-groups", gateway[0] })
            {
                start.ArgumentList.Add(argument);
            }
        }
        else if (openFileLimit is { } files)
        {
            // The shell sets the limit and becomes the gateway (exec), so the process is still the gateway.
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add($"ulimit -n {files} && exec \"$@\"");
            start.ArgumentList.Add("bash");
            start.ArgumentList.Add(gateway[0]);
        }

        foreach (var arg in gateway.Skip(1).Concat(args))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ASPNETCORE_ENVIRONMENT"] = environment;
        start.Environment["DOTNET_ENVIRONMENT"] = environment;
        start.Environment["Logging__Console__FormatterName"] = "simple";
        foreach (var (name, value) in variables)
        {
            if (value.Length == 0)
            {
                start.Environment.Remove(name); // not set at all, whatever the tests' own environment holds
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        var process = new Process { StartInfo = start };
        var wrapper = new GatewayProcess(process);
        process.OutputDataReceived += (_, e) => Append(wrapper._stdout, e.Data);
        process.ErrorDataReceived += (_, e) => Append(wrapper._stderr, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return wrapper;
    }

    /// <summary>Waits (bounded) for the process to exit; returns its exit code, or null if it did not exit in time.</summary>
    public async Task<int?> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return _process.ExitCode;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public int ProcessId => _process.Id;

    [GeneratedRegex(@"Now listening on: (http://[^\s]+)")]
    private static partial Regex Listening();

    /// <summary>A listening address to connect to: a wildcard one (<c>[::]</c>, <c>0.0.0.0</c>) by IPv4 loopback.</summary>
    private static string Reachable(string address) => address.Replace("//[::]:", "//127.0.0.1:", StringComparison.Ordinal).Replace("//0.0.0.0:", "//127.0.0.1:", StringComparison.Ordinal);

    /// <summary>
    /// Waits (bounded) until both endpoints are listening and tells them apart: the management
    /// endpoint is the one that answers /healthz/live.
    /// </summary>
    public async Task<(Uri Proxy, Uri Management)> FindEndpointsAsync()
    {
        List<string> addresses = [];
        Assert.True(await Eventually.TrueAsync(() => (addresses = Listening().Matches(StandardOutput).Select(m => Reachable(m.Groups[1].Value)).ToList()).Count == 2, TimeSpan.FromSeconds(30)),
            "gateway did not start: " + StandardOutput + StandardError);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(15) }; // a first request to a process still JIT-compiling, on a busy machine (7 s seen)
        foreach (var address in addresses)
        {
            using var response = await http.GetAsync(address + "/healthz/live");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return (new Uri(addresses.Single(a => a != address)), new Uri(address));
            }
        }

        throw new InvalidOperationException("no management endpoint among " + string.Join(", ", addresses));
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (builder)
        {
            builder.AppendLine(line);
        }
    }
}
