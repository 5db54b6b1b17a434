using System.Net;
using System.Net.Sockets;

namespace YarpGateway.Tests.Functional;

public class StartupTests
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    /// <summary>The exit code, with what the process wrote when it is another (a crash's 134 says nothing alone).</summary>
    private static void AssertExitCode(int expected, int? actual, GatewayProcess gateway)
        => Assert.True(actual == expected, $"exit code {actual?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none (still running)"}, expected {expected}; stderr: {gateway.StandardError}; stdout: {gateway.StandardOutput}");

    [Fact]
    public async Task BadConfig_ExitsNonZero_WithEveryErrorListedAndNoStackTrace()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "ReverseProxy": {
            "Routes": {
              "api": { "ClusterId": "api", "Order": "first", "Match": { "Path": "/api/{**rest}" } },
              "orphan": { "ClusterId": "nowhere", "Match": { "Path": "/o" } } },
            "Clusters": {
              "api": { "LoadBalancingPolicy": "Fastest",
                       "Destinations": { "d1": { "Address": "http://127.0.0.1:9", "Metadata": { "Weight": "-1" } } } },
              "shop": { "Destinations": { "d1": { "Address": "ftp://127.0.0.1:9" } } } } },
          "Gateway": { "Health": { "RequireAvailableDestinations": "sometimes" } } }
        """);

        using var gateway = GatewayProcess.StartOnLoopback(path);
        var exitCode = await gateway.WaitForExitAsync(ExitBound);

        Assert.NotNull(exitCode);
        Assert.NotEqual(0, exitCode);
        var stderr = gateway.StandardError;
        Assert.Contains("The gateway configuration is invalid (6 errors)", stderr, StringComparison.Ordinal);
        Assert.Contains($"{path}: ReverseProxy:Routes:api:Order", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:orphan:ClusterId: route 'orphan' refers to cluster 'nowhere'", stderr, StringComparison.Ordinal);
        Assert.Contains("'Fastest'", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:api:Destinations:d1:Metadata:Weight: '-1' is not a valid weight", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:shop:Destinations:d1:Address: 'ftp://127.0.0.1:9' has the scheme 'ftp'", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Health", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr + gateway.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigFileThatIsNotJson_ExitsNonZero_NamingTheFile()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{ \"ReverseProxy\": ");
        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains(path, gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("JSON", gateway.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingConfigFile_ExitsNonZero_NamingTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"does-not-exist-{Guid.NewGuid():N}.json");
        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"--config: the file '{path}' does not exist.", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConfigPathThatIsADirectory_ExitsNonZero_SayingSo()
    {
        var directory = Directory.CreateTempSubdirectory("yarpgateway-configdir-").FullName;

        using var gateway = GatewayProcess.StartOnLoopback(directory);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"--config: '{directory}' is a directory; give the path of the JSON file in it.", gateway.StandardError, StringComparison.Ordinal);
        Directory.Delete(directory);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // file modes and setpriv; the gateway's platform
    public async Task ConfigFileTheGatewaysUserCannotRead_ExitsNonZero_SayingSo_WithoutAStackTrace()
    {
        // Tried as the image's user with a file it could not read (a Secret or ConfigMap mounted with
        // a mode for root only): an unhandled exception, exit 134, forty lines of stack trace.
        var path = ProxyConfigJson.WriteTemp("yarpgateway-unreadable-", "{}");
        File.SetUnixFileMode(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherExecute);
        File.SetUnixFileMode(path, UnixFileMode.None);

        using var gateway = GatewayProcess.StartUnprivileged("Production", "--config", path,
            "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"--config: the file '{path}' cannot be read (Access to the path '{path}' is denied). Make it readable", gateway.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", gateway.StandardError + gateway.StandardOutput, StringComparison.Ordinal);
        File.Delete(path);
    }

    [Fact]
    public async Task PortInUse_ExitsNonZero_SayingWhich()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");

        using var gateway = GatewayProcess.Start("Production", "--config", path,
            $"--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:{port}", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"127.0.0.1:{port}", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("already in use", gateway.StandardError, StringComparison.Ordinal);

        // One line, not the host's "Hosting failed to start" with its thirty lines of stack trace before it.
        Assert.DoesNotContain("Hosting failed to start", gateway.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", gateway.StandardOutput + gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_MakesNoDataProtectionKey_AndLogsNoWarningAboutOne()
    {
        // YARP brings Data Protection (for its encrypted affinity cookies), which made a key ring at every
        // start: with a HOME it could write to, a new key and "No XML encryptor configured"; in a pod
        // (read-only file system) three warnings. No cluster here uses an encrypted affinity policy.
        await using var backend = await TestBackend.StartAsync("b");
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", ProxyConfigJson.CatchAll("WeightedRoundRobin", (backend, "1")));
        var home = Directory.CreateTempSubdirectory("yarpgateway-home-").FullName;

        using var gateway = GatewayProcess.Start("Production", new Dictionary<string, string> { ["HOME"] = home },
            "--config", path, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");
        var (proxy, _) = await gateway.FindEndpointsAsync();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var response = await client.GetAsync(new Uri(proxy, "/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("DataProtection", gateway.StandardOutput, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(home, ".aspnet")), "a Data Protection key was written under HOME");
        Directory.Delete(home, recursive: true);
    }

    [Fact]
    public async Task OneCpu_WithoutTheTieringVariable_IsWarnedOf_OnlyByABuildThatCompilesAtRunTime()
    {
        // The native AOT build (tests/aot/check.sh runs this against it) has no tiered compilation: it warned all the same.
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        using var gateway = GatewayProcess.Start("Production",
            new Dictionary<string, string> { ["DOTNET_PROCESSOR_COUNT"] = "1", [RuntimeDefaults.TieringDelaySingleProcMultiplier] = "" },
            "--config", path, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");
        await gateway.FindEndpointsAsync();

        Assert.Contains("(1 CPU(s); default)", gateway.StandardOutput, StringComparison.Ordinal); // the runtime took the count
        var warned = gateway.StandardOutput.Contains(RuntimeDefaults.TieringDelaySingleProcMultiplier + " not set", StringComparison.Ordinal);
        Assert.Equal(GatewayProcess.Executable is null, warned);
    }

    [Fact]
    public async Task TheJsonConsoleFormat_AsTheDeploymentSetsIt_NamesEachEvent()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        using var gateway = GatewayProcess.Start("Production",
            new Dictionary<string, string> { ["Logging__Console__FormatterName"] = "json", ["Logging__Console__FormatterOptions__UseUtcTimestamp"] = "true" },
            "--config", path, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");

        Assert.True(await Eventually.TrueAsync(() => gateway.StandardOutput.Contains("ListeningOnAddress", StringComparison.Ordinal), TimeSpan.FromSeconds(30)),
            "no listening line: " + gateway.StandardOutput + gateway.StandardError);
        var events = gateway.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => System.Text.Json.JsonDocument.Parse(line).RootElement)
            .ToList();
        var loaded = Assert.Single(events, e => e.TryGetProperty("EventName", out var name) && name.GetString() == "ConfigLoaded");
        Assert.Equal("YarpGateway.Configuration.GatewayConfigProvider", loaded.GetProperty("Category").GetString());
        Assert.Equal(1, loaded.GetProperty("EventId").GetInt32());
        Assert.Contains(events, e => e.TryGetProperty("EventName", out var name) && name.GetString() == "NoRoutes");
    }

    [Theory]
    // Each ended the process at start with an unhandled exception and its stack, exit 134 (tried); Http5 and Maybe were
    // ignored without a word.
    [InlineData("--Kestrel:Endpoints:Proxy:Url=nonsense", "Kestrel:Endpoints:Proxy:Url: 'nonsense' is not a URL Kestrel can listen on")]
    [InlineData("--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0/api", "Kestrel:Endpoints:Proxy:Url: 'http://127.0.0.1:0/api' has a path ('/api')")]
    [InlineData("--Kestrel:Endpoints:Proxy:Url=htp://127.0.0.1:0", "Kestrel:Endpoints:Proxy:Url: 'htp://127.0.0.1:0' has the scheme 'htp': Kestrel listens on http:// and https:// only")]
    [InlineData("--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:99999", "Kestrel:Endpoints:Proxy:Url: 'http://127.0.0.1:99999' has the port 99999: a port is 0 to 65535")]
    [InlineData("--Kestrel:Endpoints:Proxy:Protocols=Http3", "Kestrel:Endpoints:Proxy:Protocols: 'Http3' needs an https:// Url")]
    [InlineData("--Kestrel:Endpoints:Proxy:Protocols=Http5", "Kestrel:Endpoints:Proxy:Protocols: 'Http5' is not one of")]
    [InlineData("--Kestrel:Endpoints:Proxy:SslProtocols:0=Tls13", "Kestrel:Endpoints:Proxy:SslProtocols: is for https:// endpoints")]
    [InlineData("--Kestrel:Endpoints:Proxy:ClientCertificateMode=AllowCertificate", "Kestrel:Endpoints:Proxy:ClientCertificateMode: is for https:// endpoints")]
    [InlineData("--Kestrel:Endpoints:Proxy:Certificate:Path=/etc/tls/gw.pfx", "Kestrel:Endpoints:Proxy:Certificate: is for https:// endpoints")]
    [InlineData("--Kestrel:Endpoints:Proxy:Sni:a.example:Protocols=Http1", "Kestrel:Endpoints:Proxy:Sni: is for https:// endpoints")]
    [InlineData("--Kestrel:Endpoints:Proxy:ClientCertificateMode=Maybe", "Kestrel:Endpoints:Proxy:ClientCertificateMode: 'Maybe' is not one of NoCertificate,")]
    [InlineData("--Kestrel:EndpointDefaults:Protocols=Http5", "Kestrel:EndpointDefaults:Protocols: 'Http5' is not one of")]
    [InlineData("--Kestrel:EndpointDefaults:Protocols=Http3", "Kestrel:EndpointDefaults:Protocols: 'Http3' needs an https:// Url (HTTP/3 runs over QUIC, with TLS); 'http://127.0.0.1:0' is http (Kestrel:EndpointDefaults applies to the Proxy endpoint")]
    [InlineData("--Kestrel:Endpoints:Proxy:Protocols=None", "Kestrel:Endpoints:Proxy:Protocols: 'None' would serve no protocol")] // before: "'None' is not one of None, ..."
    [InlineData("--Kestrel:Endpoints:Extra:Url=http://127.0.0.1:0", "Kestrel:Endpoints:Extra: the gateway serves two endpoints")] // before: a third port that proxied past admission
    [InlineData("--Kestrel:Endpoints:Management:Protocols=Http2", "Kestrel:Endpoints:Management:Protocols: 'Http2' leaves the Management endpoint without HTTP/1.1")] // before: started, probes answered 400
    [InlineData("--Kestrel:Limits:MaxRequestHeaderCount=0", "Kestrel:Limits:MaxRequestHeaderCount: '0' is out of Kestrel's range: Value must be a positive number.")]
    [InlineData("--Kestrel:Limits:Http2:InitialConnectionWindowSize=1", "Kestrel:Limits:Http2:InitialConnectionWindowSize: '1' is out of Kestrel's range: A value between 65535 and 2147483647 is required.")]
    [InlineData("--Kestrel:Limits:MaxRequestBufferSize=10", "Kestrel:Limits:MaxRequestBufferSize: 10 bytes is less than MaxRequestLineSize (8192, Kestrel's default) and MaxRequestHeadersTotalSize (32768, Kestrel's default), and Kestrel refuses to start with a request buffer smaller than a request line or its headers may be: raise it to at least 32768.")] // before: passed --check
    [InlineData("--Kestrel:Limits:MaxRequestBufferSize=1000", "Kestrel:Limits:MaxRequestBufferSize: 1000 bytes is less than MaxRequestLineSize (8192, Kestrel's default) and MaxRequestHeadersTotalSize (32768, Kestrel's default), and Kestrel refuses to start with a request buffer smaller than a request line or its headers may be: raise it to at least 32768, or lower MaxRequestLineSize and MaxRequestHeadersTotalSize.")]
    [InlineData("--Kestrel:Limits:MaxRequestHeadersTotalSize=60", "Kestrel:Limits:MaxRequestHeadersTotalSize: 60 bytes is less than 512, the least the gateway accepts: Kestrel would answer 400, 414 or 431 to ordinary requests before the gateway sees them, Kubernetes' probes included")] // before: passed --check, and every probe got 431
    [InlineData("--Kestrel:Limits:MaxRequestLineSize=8", "Kestrel:Limits:MaxRequestLineSize: 8 bytes is less than 128, the least the gateway accepts: Kestrel would answer 400, 414 or 431 to ordinary requests before the gateway sees them, Kubernetes' probes included (a probe's request line is about 30 bytes, its headers about 90 bytes in 4), so the pod would never be ready. The value is in bytes: 8192 is 8 KiB.")] // before: passed --check
    [InlineData("--Kestrel:Limits:MaxRequestHeaderCount=3", "Kestrel:Limits:MaxRequestHeaderCount: 3 headers is less than 8, the least the gateway accepts")] // before: passed --check, and every probe got 431
    [InlineData("--Kestrel:Limits:Http2:MaxRequestHeaderFieldSize=16", "Kestrel:Limits:Http2:MaxRequestHeaderFieldSize: 16 bytes is less than 512, the least the gateway accepts: Kestrel would close the HTTP/2 connection of a request with a longer header (its encoded size; a browser's user-agent is 100 to 200 bytes, a cookie often several KiB) before the gateway sees it. The value is in bytes: 16384 is 16 KiB.")] // before: passed --check
    public async Task AKestrelSettingKestrelRefuses_ExitsNonZero_WithOneLine(string setting, string expected)
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        string[] endpoints = ["--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0"];

        using var gateway = GatewayProcess.Start("Production", ["--config", path, .. endpoints, setting]);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains(expected, gateway.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoggingAndHostValuesThePlatformRefusesOrNeverMatches_ExitNonZero_ListingEach()
    {
        // Before: the logger factory, or the console logger, threw while the host was built: an unhandled exception and exit 134.
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Logging": { "LogLevel": { "Default": "Verbose" }, "Console": { "LogLevel": { "Microsoft": "Warn" }, "QueueFullMode": "Block", "FormatterOptions": { "UseUtcTimestamp": "yes" } }, "CaptureScopes": "yes" },
          "AllowedHosts": "gateway.example:8080" }
        """);

        using var gateway = GatewayProcess.Start("Production", "--config", path, "--Kestrel:Endpoints:Proxy:Url=http://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"{path}: Logging:LogLevel:Default: 'Verbose' is not a log level: Trace, Debug, Information, Warning, Error, Critical, None.", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains($"{path}: Logging:Console:LogLevel:Microsoft: 'Warn' is not a log level", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains($"{path}: Logging:CaptureScopes: 'yes' is not true or false.", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains($"{path}: Logging:Console:QueueFullMode: 'Block' is not one of Wait, DropWrite.", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains($"{path}: Logging:Console:FormatterOptions:UseUtcTimestamp: 'yes' is not true or false.", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains($"{path}: AllowedHosts: 'gateway.example:8080' has a port", gateway.StandardError, StringComparison.Ordinal); // before: started, every request 400
        Assert.DoesNotContain("   at ", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TlsVersionsNoClientCouldUse_ExitNonZero_ListingEach()
    {
        // Before: it started, ready, and every TLS handshake failed with nothing logged: OpenSSL serves one range of
        // versions, ending at a gap, and refuses TLS 1.0 and 1.1.
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Kestrel": { "Endpoints": { "Proxy": { "Url": "https://127.0.0.1:0", "SslProtocols": [ "Tls", "Tls12", "Tls13" ],
            "Sni": { "old.example": { "SslProtocols": [ "Tls11" ] } } } } } }
        """);

        using var gateway = GatewayProcess.Start("Production", "--config", path, "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"{path}: Kestrel:Endpoints:Proxy:SslProtocols: ['Tls', 'Tls12', 'Tls13'] misses Tls11 between versions it lists", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains($"{path}: Kestrel:Endpoints:Proxy:Sni:old.example:SslProtocols: ['Tls11'] offers no TLS 1.2 or 1.3", gateway.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ProxyAndManagementOnOnePort_ExitsNonZero_SayingSo()
    {
        // Before: "A listening port is already in use ... stop the other process", about itself.
        var port = LoopbackPort.Unused();
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");

        using var gateway = GatewayProcess.Start("Production", "--config", path,
            $"--Kestrel:Endpoints:Proxy:Url=http://0.0.0.0:{port}", $"--Kestrel:Endpoints:Management:Url=http://127.0.0.1:{port}");

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains($"Kestrel:Endpoints:Management:Url: 'http://127.0.0.1:{port}' is the Proxy endpoint's port too ({port}", gateway.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("already in use", gateway.StandardError, StringComparison.Ordinal);
    }

    // Before: the shipped endpoints were http://0.0.0.0:*, IPv4 only; on an IPv6-only or dual-stack cluster's pod
    // address both ports refused every connection, the kubelet's probes included.
    [Fact]
    public async Task TheShippedEndpoints_AnswerOverIPv4AndIPv6_AndAnIPv4ClientIsForwardedAsIPv4()
    {
        var shipped = System.Text.Json.Nodes.JsonNode.Parse(
            File.ReadAllText(YarpGateway.Tests.Deploy.RepositoryFiles.PathOf("appsettings/appsettings.json")),
            documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip, AllowTrailingCommas = true })!["Kestrel"]!["Endpoints"]!;
        string OnAnyPort(string endpoint, int port)
        {
            var url = shipped[endpoint]!["Url"]!.GetValue<string>();
            Assert.EndsWith($":{port}", url, StringComparison.Ordinal);
            return url[..^$"{port}".Length] + "0";
        }

        await using var backend = await TestBackend.StartAsync("a");
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", ProxyConfigJson.CatchAll("RoundRobin", (backend, null)));
        using var gateway = GatewayProcess.Start("Production", "--config", path,
            $"--Kestrel:Endpoints:Proxy:Url={OnAnyPort("Proxy", 8080)}", $"--Kestrel:Endpoints:Management:Url={OnAnyPort("Management", 8081)}");
        var (proxy, management) = await gateway.FindEndpointsAsync();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var loopbacks = Socket.OSSupportsIPv6 ? new[] { "127.0.0.1", "[::1]" } : ["127.0.0.1"];
        foreach (var loopback in loopbacks)
        {
            using var live = await http.GetAsync($"http://{loopback}:{management.Port}/healthz/live");
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            Assert.Equal("a", await http.GetStringAsync($"http://{loopback}:{proxy.Port}/x"));
        }

        Assert.Equal("127.0.0.1", await http.GetStringAsync($"http://127.0.0.1:{proxy.Port}/forwarded-for"));

        // X-Real-IP too: it was ::ffff:127.0.0.1, the dual-stack socket's form of an IPv4 peer.
        Assert.Equal("127.0.0.1", backend.RequestHeaders.Last()["X-Real-IP"]);
    }

    [Theory]
    [InlineData("http://0.0.0.0:8080", "http://0.0.0.0:8081", null)]
    [InlineData("http://0.0.0.0:8080", "http://localhost:8080", 8080)]
    [InlineData("http://*:8080", "http://10.0.0.1:8080", 8080)]
    [InlineData("http://10.0.0.2:8080", "http://10.0.0.1:8080", null)] // two addresses of the host
    [InlineData("http://127.0.0.1:0", "http://127.0.0.1:0", null)] // each gets a port of its own
    [InlineData("https://[::]:443", "http://127.0.0.1:443", 443)]
    public void SamePort_IsFoundWhereTheBindsWouldCollide(string proxy, string management, int? expected)
        => Assert.Equal(expected, YarpGateway.Endpoints.GatewayKestrelSetup.SamePort(proxy, management));

    [Theory]
    [InlineData("missing")]
    [InlineData("not a certificate")]
    [InlineData("a PEM certificate without its key")] // no KeyPath: "The server mode SSL must use a certificate with the associated private key"
    [InlineData("a key that is not the certificate's")]
    public async Task HttpsEndpointsCertificateUnusable_ExitsNonZero_SayingWhichSetting_AndCheckSaysSoFirst(string problem)
    {
        // Before: "Unhandled exception", a stack trace and exit code 134 (an abort), as for a crash. And --check called
        // such a configuration valid (exit 0), since Kestrel loads the files only as it binds.
        var certificate = Path.Combine(Path.GetTempPath(), $"yarpgateway-cert-{Guid.NewGuid():N}.pem");
        string? key = null;
        if (problem == "not a certificate")
        {
            await File.WriteAllTextAsync(certificate, "this is not a certificate");
        }
        else if (problem != "missing")
        {
            using var loopback = TestCertificate.SelfSignedLoopback();
            await File.WriteAllTextAsync(certificate, loopback.ExportCertificatePem());
            if (problem == "a key that is not the certificate's")
            {
                using var other = System.Security.Cryptography.RSA.Create(2048);
                key = certificate + ".key";
                await File.WriteAllTextAsync(key, other.ExportPkcs8PrivateKeyPem());
            }
        }

        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        string[] args = ["--config", path, "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0", $"--Kestrel:Endpoints:Proxy:Certificate:Path={certificate}",
            .. key is null ? Array.Empty<string>() : [$"--Kestrel:Endpoints:Proxy:Certificate:KeyPath={key}"],
            "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0"];
        foreach (var check in new[] { true, false })
        {
            using var gateway = GatewayProcess.Start("Production", check ? [.. args, "--check"] : args);

            AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
            Assert.Contains($"Kestrel:Endpoints:Proxy:Certificate: the TLS certificate of the Proxy endpoint could not be loaded from {certificate}", gateway.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", gateway.StandardError, StringComparison.Ordinal);
            if (problem == "a PEM certificate without its key")
            {
                Assert.Contains("a PEM certificate needs its key's file as KeyPath", gateway.StandardError, StringComparison.Ordinal);
            }
        }

        File.Delete(certificate);
        if (key is not null)
        {
            File.Delete(key);
        }
    }

    [Fact]
    public async Task HttpsEndpointWithAStoreCertificateNotFound_ExitsNonZero_SayingWhereToGiveOne()
    {
        // Kestrel's own loading, which the files' check leaves to it: a store certificate that is not there.
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        using var gateway = GatewayProcess.Start("Production", "--config", path, "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0",
            "--Kestrel:Endpoints:Proxy:Certificate:Subject=CN=yarpgateway-nowhere", "--Kestrel:Endpoints:Proxy:Certificate:Store=My",
            "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0");

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains("A TLS certificate could not be loaded", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("CN=yarpgateway-nowhere", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("Kestrel:Endpoints:*:Certificate", gateway.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpsEndpointWithNoCertificate_AndNoDevelopmentCertificate_CheckSaysSo_AndAStartToo()
    {
        // Before, --check called it valid (exit 0): Kestrel falls back on the development certificate only as it binds,
        // and a container has none, so every pod started with it exited. A home of its own: none from this machine's user.
        var home = Directory.CreateTempSubdirectory("yarpgateway-home-").FullName;
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        string[] args = ["--config", path, "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0"];
        foreach (var check in new[] { true, false })
        {
            using var gateway = GatewayProcess.Start("Production", new Dictionary<string, string> { ["HOME"] = home }, check ? [.. args, "--check"] : args);

            AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
            Assert.Contains("Kestrel:Endpoints:Proxy: the Proxy endpoint is HTTPS and has no TLS certificate: give it one as Kestrel:Endpoints:Proxy:Certificate", gateway.StandardError, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", gateway.StandardError, StringComparison.Ordinal);
        }

        Directory.Delete(home, recursive: true);
    }

    [Fact]
    public async Task HttpsEndpointWithNoCertificate_AndADevelopmentCertificate_IsValid_AndServesIt()
    {
        // As Kestrel does, the check takes the user's development certificate: made here by the SDK's own tool, in a home
        // of the test's.
        var home = Directory.CreateTempSubdirectory("yarpgateway-home-").FullName;
        var tool = new System.Diagnostics.ProcessStartInfo("dotnet", ["dev-certs", "https"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        tool.Environment["HOME"] = home;
        tool.Environment["DOTNET_CLI_HOME"] = home;
        using (var made = System.Diagnostics.Process.Start(tool)!)
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await made.WaitForExitAsync(bound.Token);
            Assert.Equal(0, made.ExitCode);
        }

        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", "{}");
        var environment = new Dictionary<string, string> { ["HOME"] = home };
        string[] args = ["--config", path, "--Kestrel:Endpoints:Proxy:Url=https://127.0.0.1:0", "--Kestrel:Endpoints:Management:Url=http://127.0.0.1:0"];
        using (var check = GatewayProcess.Start("Production", environment, [.. args, "--check"]))
        {
            AssertExitCode(0, await check.WaitForExitAsync(ExitBound), check);
        }

        using var gateway = GatewayProcess.Start("Production", environment, args);
        var port = 0;
        Assert.True(await Eventually.TrueAsync(() => System.Text.RegularExpressions.Regex.Match(gateway.StandardOutput, @"Now listening on: https://127\.0\.0\.1:(\d+)") is { Success: true } m && (port = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)) > 0, TimeSpan.FromSeconds(30)),
            "gateway did not start: " + gateway.StandardOutput + gateway.StandardError);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        await using var tls = new System.Net.Security.SslStream(client.GetStream());
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            RemoteCertificateValidationCallback = (_, served, _, _) => served is System.Security.Cryptography.X509Certificates.X509Certificate2 c && c.Extensions[YarpGateway.Endpoints.DevelopmentCertificate.Oid] is not null,
        }, bounded.Token);
        Assert.True(tls.IsAuthenticated);
        Directory.Delete(home, recursive: true);
    }

    [Fact]
    public async Task BadAdmissionValues_ExitNonZero_WithEveryErrorListed()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Gateway": { "Admission": { "Global": { "MaxConcurrency": -1 }, "Connections": { "MaxWait": "-00:00:01" }, "Upgrades": { "Burst": "lots" } } },
          "ReverseProxy": {
            "Routes": { "api": { "ClusterId": "api", "Match": { "Path": "/api" }, "Metadata": { "MaxConcurrency": "0", "MaxQueue": "-1" } } },
            "Clusters": { "api": { "Metadata": { "MaxConcurrency": "abc", "QueueTimeout": "soon" },
                                   "Destinations": { "d1": { "Address": "http://127.0.0.1:9" } } } } } }
        """);

        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        var stderr = gateway.StandardError;
        Assert.Contains("ReverseProxy:Routes:api:Metadata:MaxConcurrency: '0' is not a whole number of at least 1, or \"auto\".", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:api:Metadata:MaxQueue: '-1' is not a whole number of at least 0.", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:api:Metadata:MaxConcurrency: 'abc' is not a whole number of at least 1, or \"auto\".", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:api:Metadata:QueueTimeout: 'soon' is not a positive time span", stderr, StringComparison.Ordinal);
        Assert.Contains("Upgrades:Burst", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadAdmissionOptions_AreAllListed()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Gateway": { "Admission": { "Global": { "MaxConcurrency": -1 }, "ClusterShare": 1.5, "UploadShare": 0, "Connections": { "MaxWait": "-00:00:01" } } } }
        """);

        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        Assert.Contains("Gateway:Admission:Global:MaxConcurrency must not be negative", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("Gateway:Admission:ClusterShare must be more than 0 and at most 1 (1 turns it off); got 1.5.", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("Gateway:Admission:UploadShare must be more than 0 and at most 1 (1 turns it off); got 0.", gateway.StandardError, StringComparison.Ordinal);
        Assert.Contains("Gateway:Admission:Connections:MaxWait must be positive", gateway.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadResilienceValues_ExitNonZero_WithEveryErrorListed()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Gateway": { "Resilience": { "ConnectTimeout": "-00:00:01", "RetryStatusCodes": [ 200, 503 ], "RetryBudget": { "Ratio": 1.5 } } },
          "ReverseProxy": {
            "Routes": { "api": { "ClusterId": "api", "Match": { "Path": "/api" }, "Metadata": { "TryTimeout": "-00:00:01", "RetryIdempotent": "maybe" } } },
            "Clusters": { "api": { "Metadata": { "RetryStatusCodes": "503,banana", "OutlierEjection.MaxEjectedPercent": "150" },
                                   "Destinations": { "d1": { "Address": "http://127.0.0.1:9" } } } } } }
        """);

        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        var stderr = gateway.StandardError;
        Assert.Contains("Gateway:Resilience:ConnectTimeout must be positive", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Resilience:RetryStatusCodes: 200 is not a status a gateway can retry", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:Resilience:RetryBudget:Ratio must be from 0 to 1", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:api:Metadata:TryTimeout: '-00:00:01' is not a positive time span", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:api:Metadata:RetryIdempotent: 'maybe' is not true or false.", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:api:Metadata:RetryStatusCodes: '503,banana'", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Clusters:api:Metadata:OutlierEjection.MaxEjectedPercent: '150'", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadWebSocketValues_ExitNonZero_WithEveryErrorListed()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Gateway": { "WebSockets": { "OutboundBufferBytes": 10, "SlowClientPolicy": "Sometimes", "CloseTimeout": "00:00:00" } },
          "ReverseProxy": {
            "Routes": { "ws": { "ClusterId": "ws", "Match": { "Path": "/ws" }, "Metadata": { "WebSocketSlowClientPolicy": "Drop", "WebSocketOutboundBufferBytes": "1" } } },
            "Clusters": { "ws": { "Destinations": { "d1": { "Address": "http://127.0.0.1:9" } } } } } }
        """);

        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        var stderr = gateway.StandardError;
        Assert.Contains("Gateway:WebSockets", stderr, StringComparison.Ordinal);
        Assert.Contains("Sometimes", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:ws:Metadata:WebSocketSlowClientPolicy: 'Drop' is not one of Backpressure, DropMessages, Disconnect.", stderr, StringComparison.Ordinal);
        Assert.Contains("ReverseProxy:Routes:ws:Metadata:WebSocketOutboundBufferBytes: '1' is not a number of bytes", stderr, StringComparison.Ordinal);
        // The unconvertible policy does not hide the section's other errors.
        Assert.Contains("Gateway:WebSockets:SlowClientPolicy: 'Sometimes' is not one of Backpressure, DropMessages, Disconnect.", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:WebSockets:OutboundBufferBytes must be", stderr, StringComparison.Ordinal);
        Assert.Contains("Gateway:WebSockets:CloseTimeout must be", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadTransportValue_ExitsNonZero_NamingTheSection()
    {
        var path = ProxyConfigJson.WriteTemp("yarpgateway-startup-", """
        { "Gateway": { "Transport": { "InlineScheduling": "sometimes" } } }
        """);

        using var gateway = GatewayProcess.StartOnLoopback(path);

        AssertExitCode(1, await gateway.WaitForExitAsync(ExitBound), gateway);
        var stderr = gateway.StandardError;
        Assert.Contains("Gateway:Transport", stderr, StringComparison.Ordinal);
        Assert.Contains("sometimes", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
    }
}
