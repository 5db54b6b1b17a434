using System.Diagnostics;
using System.Net;
using YamlDotNet.RepresentationModel;
using YarpGateway.Health;
using YarpGateway.Tests.Configuration;
using YarpGateway.Tests.Functional;
using Xunit.Abstractions;

namespace YarpGateway.Tests.Deploy;

/// <summary>The manifests under deploy/kubernetes agree with what the gateway really serves and how it shuts down.</summary>
public class KubernetesManifestTests(ITestOutputHelper output)
{
    private static readonly string ManifestFolder = RepositoryFiles.PathOf("deploy/kubernetes");

    private static IReadOnlyList<YamlMappingNode> Documents()
    {
        var documents = new List<YamlMappingNode>();
        foreach (var file in Directory.GetFiles(ManifestFolder, "*.yaml"))
        {
            var stream = new YamlStream();
            using var reader = new StreamReader(file);
            stream.Load(reader);
            documents.AddRange(stream.Documents.Select(d => (YamlMappingNode)d.RootNode));
        }

        return documents;
    }

    private static YamlMappingNode Kind(string kind) => Documents().Single(d => Scalar(d, "kind") == kind);

    private static YamlNode Get(YamlNode node, params string[] path)
    {
        foreach (var key in path)
        {
            node = ((YamlMappingNode)node).Children[new YamlScalarNode(key)];
        }

        return node;
    }

    private static string Scalar(YamlNode node, params string[] path) => ((YamlScalarNode)Get(node, path)).Value!;

    private static YamlMappingNode Container()
        => (YamlMappingNode)((YamlSequenceNode)Get(Kind("Deployment"), "spec", "template", "spec", "containers")).Children.Single();

    /// <summary>The configuration the gateway builds in the pod: its appsettings plus the ConfigMap file layered with --config.</summary>
    private static IConfiguration PodConfiguration()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ["--config", Path.Combine(ManifestFolder, "appsettings.Production.json")],
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Production",
        });
        builder.AddGateway();
        return builder.Configuration;
    }

    [Fact]
    public void EveryManifestParses_AndKustomizationListsThemAll()
    {
        var kinds = Documents().Select(d => Scalar(d, "kind")).ToList();
        Assert.Equivalent(new[] { "Kustomization", "Namespace", "Deployment", "Service", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler" }, kinds);

        var listed = ((YamlSequenceNode)Get(Kind("Kustomization"), "resources")).Children.Select(n => ((YamlScalarNode)n).Value).ToHashSet();
        var files = Directory.GetFiles(ManifestFolder, "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml").ToHashSet();
        Assert.Equal(files, listed);
    }

    [Fact]
    public async Task Probes_AreThePathsAndPortTheGatewayServes()
    {
        var container = Container();
        var ports = ((YamlSequenceNode)Get(container, "ports")).Children.Cast<YamlMappingNode>()
            .ToDictionary(p => Scalar(p, "name"), p => int.Parse(Scalar(p, "containerPort"), System.Globalization.CultureInfo.InvariantCulture));

        // Ports: what the gateway binds with the pod's configuration.
        var configuration = PodConfiguration();
        Assert.Equal(Microsoft.AspNetCore.Http.BindingAddress.Parse(configuration["Kestrel:Endpoints:Proxy:Url"]!).Port, ports["proxy"]);
        Assert.Equal(Microsoft.AspNetCore.Http.BindingAddress.Parse(configuration["Kestrel:Endpoints:Management:Url"]!).Port, ports["management"]);

        // Paths: each probe answers on the running gateway's management endpoint (and not on the proxy one).
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await GatewayUnderTest.StartAsync(ProxyConfigJson.Config(("api", "/api/{**rest}", "c1"), ("c1", "WeightedRoundRobin", [(backend, "1")])));
        using var management = gateway.CreateManagementClient();
        using var proxy = gateway.CreateProxyClient();
        foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
        {
            Assert.Equal("management", Scalar(container, probe, "httpGet", "port"));
            var path = Scalar(container, probe, "httpGet", "path");
            using var served = await management.GetAsync(path);
            using var notProxied = await proxy.GetAsync(path);
            Assert.True(served.StatusCode == HttpStatusCode.OK, $"{probe} {path}: {served.StatusCode}");
            Assert.Equal(HttpStatusCode.NotFound, notProxied.StatusCode);
        }

        // The Services point at the named container ports.
        var services = Documents().Where(d => Scalar(d, "kind") == "Service").ToList();
        Assert.Contains(services, s => ((YamlSequenceNode)Get(s, "spec", "ports")).Children.Any(p => Scalar(p, "targetPort") == "proxy"));
        Assert.Contains(services, s => ((YamlSequenceNode)Get(s, "spec", "ports")).Children.Any(p => Scalar(p, "targetPort") == "management"));
    }

    [Fact]
    public void GracePeriod_CoversPreStopDrainDelayAndShutdownTimeout()
    {
        var podSpec = Get(Kind("Deployment"), "spec", "template", "spec");
        var grace = int.Parse(Scalar(podSpec, "terminationGracePeriodSeconds"), System.Globalization.CultureInfo.InvariantCulture);
        var preStop = int.Parse(Scalar(Container(), "lifecycle", "preStop", "sleep", "seconds"), System.Globalization.CultureInfo.InvariantCulture);
        var shutdown = PodConfiguration().GetSection(ShutdownOptions.SectionName).Get<ShutdownOptions>() ?? new ShutdownOptions();

        var needed = preStop + shutdown.DrainDelay.TotalSeconds + shutdown.Timeout.TotalSeconds;
        Assert.True(grace >= needed + 1, $"terminationGracePeriodSeconds {grace} < preStop {preStop} + drain {shutdown.DrainDelay} + timeout {shutdown.Timeout} + margin");
    }

    [Fact]
    public void Container_RunsAsNonRoot_ReadOnly_WithoutPrivilegeEscalation()
    {
        var container = Container();
        Assert.Equal("true", Scalar(container, "securityContext", "runAsNonRoot"));
        Assert.Equal("true", Scalar(container, "securityContext", "readOnlyRootFilesystem"));
        Assert.Equal("false", Scalar(container, "securityContext", "allowPrivilegeEscalation"));
        Assert.Equal("true", Scalar(Kind("Deployment"), "spec", "template", "spec", "securityContext", "runAsNonRoot"));
        Assert.NotEqual("0", Scalar(Kind("Deployment"), "spec", "template", "spec", "securityContext", "runAsUser"));
        Assert.NotNull(Get(container, "resources", "requests", "cpu"));
        Assert.NotNull(Get(container, "resources", "limits", "memory"));
    }

    [Fact]
    public void ReplicasAreLeftToTheAutoscaler_AndProbesTolerateOneLateAnswer()
    {
        Assert.False(((YamlMappingNode)Get(Kind("Deployment"), "spec")).Children.ContainsKey(new YamlScalarNode("replicas")), "the Deployment sets replicas, which fights the HorizontalPodAutoscaler on every apply");
        Assert.Equal("Deployment", Scalar(Kind("HorizontalPodAutoscaler"), "spec", "scaleTargetRef", "kind"));
        Assert.True(int.Parse(Scalar(Kind("HorizontalPodAutoscaler"), "spec", "minReplicas"), System.Globalization.CultureInfo.InvariantCulture) >= 2);

        var container = Container();
        foreach (var probe in new[] { "readinessProbe", "livenessProbe" })
        {
            Assert.True(int.Parse(Scalar(container, probe, "failureThreshold"), System.Globalization.CultureInfo.InvariantCulture) >= 2, $"{probe}: one failed probe acts at once");
            Assert.True(int.Parse(Scalar(container, probe, "timeoutSeconds"), System.Globalization.CultureInfo.InvariantCulture) >= 3, $"{probe}: the 1 s default timeout fails under CPU throttling");
        }
    }

    [Fact]
    public void TheAutoscaler_ScalesOnMemoryToo_BeforeAnyPodHoldsNewClientsBackForItsHeap()
    {
        // Idle connections cost memory, not CPU: on CPU alone the pods would hold clients back (or worse) before
        // the autoscaler saw anything. Its memory target is a share of the request, reached before the GC heap
        // (capped by .NET at three quarters of the limit) reaches Gateway:Memory:RefuseNewAbove of its cap.
        var metrics = ((YamlSequenceNode)Get(Kind("HorizontalPodAutoscaler"), "spec", "metrics")).Children;
        var memory = metrics.Single(m => Scalar(m, "resource", "name") == "memory");
        var target = int.Parse(Scalar(memory, "resource", "target", "averageUtilization"), System.Globalization.CultureInfo.InvariantCulture) / 100.0;
        Assert.Contains(metrics, m => Scalar(m, "resource", "name") == "cpu");

        var container = Container();
        static double MiB(string quantity) => quantity.EndsWith("Mi", StringComparison.Ordinal) ? double.Parse(quantity[..^2], System.Globalization.CultureInfo.InvariantCulture) : throw new FormatException(quantity);
        var request = MiB(Scalar(container, "resources", "requests", "memory"));
        var limit = MiB(Scalar(container, "resources", "limits", "memory"));
        Assert.True(target * request < new YarpGateway.Memory.MemoryOptions().RefuseNewAbove * 0.75 * limit,
            $"the autoscaler's memory target ({target * request:F0} MiB) comes after the heap at which new clients are held back");
    }

    [Fact]
    public async Task ConfigMap_IsMountedWhereConfigPointsAndUsesPollingWatcher_AndItsJsonPassesValidation()
    {
        var container = Container();
        var args = ((YamlSequenceNode)Get(container, "args")).Children.Select(n => ((YamlScalarNode)n).Value).ToList();
        var mount = ((YamlSequenceNode)Get(container, "volumeMounts")).Children.Single(m => Scalar(m, "name") == "config");
        Assert.Equal(["--config", Scalar(mount, "mountPath") + "/appsettings.Production.json"], args);
        var env = ((YamlSequenceNode)Get(container, "env")).Children.ToDictionary(e => Scalar(e, "name"), e => Scalar(e, "value"));
        Assert.Equal("true", env["DOTNET_USE_POLLING_FILE_WATCHER"]);
        Assert.Equal("json", env["Logging__Console__FormatterName"]); // one line per event for log shippers
        Assert.Equal("true", env["Logging__Console__FormatterOptions__UseUtcTimestamp"]);

        var generator = ((YamlSequenceNode)Get(Kind("Kustomization"), "configMapGenerator")).Children.Single();
        Assert.Equal("yarpgateway-config", Scalar(generator, "name"));
        var json = await File.ReadAllTextAsync(Path.Combine(ManifestFolder, "appsettings.Production.json"));
        Assert.Empty(await GatewayConfigValidatorTests.ValidateAsync(json));

        // The Gateway:* sections in it pass the gateway's own options validation too.
        var shutdown = PodConfiguration().GetSection(ShutdownOptions.SectionName).Get<ShutdownOptions>()!;
        Assert.True(new ShutdownOptionsValidator().Validate(null, shutdown).Succeeded);
    }

    [Fact]
    public async Task KubectlKustomize_Builds_WhenKubectlIsInstalled()
    {
        var kubectl = Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(p => Path.Combine(p, "kubectl")).FirstOrDefault(File.Exists);
        if (kubectl is null)
        {
            output.WriteLine("kubectl is not installed here (Debian's repositories do not ship it); `kubectl kustomize deploy/kubernetes` was not run.");
            return;
        }

        var start = new ProcessStartInfo(kubectl, ["kustomize", ManifestFolder]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);

        Assert.True(process.ExitCode == 0, await stderr);
        Assert.Contains("kind: Deployment", await stdout, StringComparison.Ordinal);
        Assert.Contains("name: yarpgateway-config", await stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheHeadlessBackendExample_IsHeadless_AndItsGatewayConfigValidates()
    {
        var folder = Path.Combine(ManifestFolder, "examples");
        var service = new YamlStream();
        using (var reader = new StringReader(await File.ReadAllTextAsync(Path.Combine(folder, "headless-backend.yaml"))))
        {
            service.Load(reader);
        }

        var headless = service.Documents.Select(d => (YamlMappingNode)d.RootNode).Single(d => Scalar(d, "kind") == "Service");
        Assert.Equal("None", Scalar(headless, "spec", "clusterIP"));

        var json = await File.ReadAllTextAsync(Path.Combine(folder, "headless-backend.gateway.json"));
        Assert.Empty(await GatewayConfigValidatorTests.ValidateAsync(json));
        Assert.Contains("\"Discovery\": \"Dns\"", json, StringComparison.Ordinal);
        Assert.Contains(Scalar(headless, "metadata", "name") + ".", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheLoadBalancerExample_KeepsClientsAddresses_AndSelectsTheGatewaysProxyPort()
    {
        var document = new YamlStream();
        using (var reader = new StringReader(await File.ReadAllTextAsync(Path.Combine(ManifestFolder, "examples", "service-loadbalancer.yaml"))))
        {
            document.Load(reader);
        }

        var service = (YamlMappingNode)document.Documents.Single().RootNode;
        Assert.Equal("LoadBalancer", Scalar(service, "spec", "type"));
        Assert.Equal("Local", Scalar(service, "spec", "externalTrafficPolicy"));
        Assert.Equal("yarpgateway", Scalar(service, "spec", "selector", "app.kubernetes.io/name"));
        var port = (YamlMappingNode)((YamlSequenceNode)((YamlMappingNode)service["spec"])["ports"]).Single();
        Assert.Equal("proxy", ((YamlScalarNode)port["targetPort"]).Value);
    }
}
