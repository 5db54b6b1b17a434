using System.Text.Json;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;
using YarpGateway.Admission;
using YarpGateway.Configuration;
using YarpGateway.Endpoints;
using YarpGateway.Health;
using YarpGateway.LoadBalancing;
using YarpGateway.Memory;
using YarpGateway.Telemetry;
using YarpGateway.WebSockets;

namespace YarpGateway.Status;

/// <summary>
/// <c>GET /status.json</c> on the management endpoint only: what the gateway is doing right now, from
/// the counters it keeps anyway. The names are documented in docs/operations.md and stay stable.
/// </summary>
internal sealed class StatusEndpoint(
    IProxyStateLookup proxyState,
    GatewayConfigProvider config,
    RestartCheck restartCheck,
    ProxyConfigStatus applied,
    DestinationStats destinations,
    DrainNotice drain,
    AdmissionMetrics admission,
    ConnectionAdmission connectionAdmission,
    TrafficCounters traffic,
    BackendConnectionLimit backendConnections,
    WebSocketCounters webSockets,
    WebSocketMetrics webSocketMetrics,
    SchedulerDelayProbe scheduler,
    MemoryMetrics memory,
    MemoryPressure memoryPressure,
    ProxyListenQueue listenQueue,
    TimeProvider timeProvider)
{
    public const string JsonPath = "/status.json";

    private readonly DateTimeOffset _startedAt = timeProvider.GetUtcNow();
    private readonly Lock _rateLock = new();
    private (long At, long Accepted, long Closed) _previous = (timeProvider.GetTimestamp(), 0, 0);
    private (double Accepted, double Closed) _rates;

    public async Task WriteAsync(HttpContext context)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await using var json = new Utf8JsonWriter(context.Response.BodyWriter);
        var now = timeProvider.GetUtcNow();
        json.WriteStartObject();
        json.WriteNumber("revision", applied.AppliedRevision); // the one in force: its weights are the ones shown below
        json.WriteString("rejectedReload", config.RejectedReason);
        json.WriteStartArray("restartErrors"); // what a restart would stop at, in the files as they are now
        foreach (var error in restartCheck.Errors)
        {
            json.WriteStringValue(error.ToString());
        }

        json.WriteEndArray();
        json.WriteString("startedAt", _startedAt);
        json.WriteNumber("uptimeSeconds", Math.Round((now - _startedAt).TotalSeconds));
        json.WriteBoolean("draining", drain.IsDraining);
        WriteClusters(json);
        WriteAdmission(json);
        WriteConnections(json);
        json.WriteStartObject("webSockets");
        json.WriteNumber("open", webSockets.Open);
        json.WriteNumber("bufferedBytes", webSockets.BufferedBytes);
        json.WriteStartObject("evictions");
        foreach (var (reason, count) in webSocketMetrics.EvictionsByReason)
        {
            json.WriteNumber(reason, count);
        }

        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteStartObject("scheduler");
        json.WriteNumber("delayP99Ms", Math.Round(scheduler.RecentP99() * 1000, 3));
        json.WriteNumber("pendingWorkItems", ThreadPool.PendingWorkItemCount);
        json.WriteNumber("threads", ThreadPool.ThreadCount);
        json.WriteEndObject();
        WriteMemory(json);
        json.WriteEndObject();
        await json.FlushAsync(context.RequestAborted);
    }

    // The process's resident memory, what the GC heap has committed, and what compactions after a
    // drop in connections gave back (Gateway:Memory).
    private void WriteMemory(Utf8JsonWriter json)
    {
        json.WriteStartObject("memory");
        json.WriteNumber("workingSetBytes", Environment.WorkingSet);
        var gc = GC.GetGCMemoryInfo();
        json.WriteNumber("gcCommittedBytes", gc.TotalCommittedBytes);
        json.WriteNumber("gcHeapBytes", gc.HeapSizeBytes);
        json.WriteNumber("gcHeapLimitBytes", gc.TotalAvailableMemoryBytes);
        json.WriteBoolean("refusingNew", memoryPressure.IsHigh);
        json.WriteNumber("compactions", memory.Compactions);
        json.WriteNumber("compactionsSkipped", memory.SkippedCompactions);
        json.WriteNumber("returnedBytes", memory.ReturnedBytes);
        json.WriteEndObject();
    }

    private void WriteClusters(Utf8JsonWriter json)
    {
        var second = destinations.Now; // the last minute up to this second
        json.WriteStartArray("clusters");
        foreach (var cluster in proxyState.GetClusters().OrderBy(c => c.ClusterId, StringComparer.Ordinal))
        {
            json.WriteStartObject();
            json.WriteString("id", cluster.ClusterId);
            json.WriteString("loadBalancingPolicy", cluster.Model?.Config.LoadBalancingPolicy ?? "PowerOfTwoChoices");
            json.WriteStartArray("destinations");
            foreach (var destination in cluster.Destinations.Values.OrderBy(d => d.DestinationId, StringComparer.Ordinal))
            {
                WriteDestination(json, cluster, destination, second);
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WriteEndArray();
    }

    private void WriteDestination(Utf8JsonWriter json, ClusterState cluster, DestinationState destination, long second)
    {
        var health = destination.Health;
        json.WriteStartObject();
        json.WriteString("id", destination.DestinationId);
        json.WriteString("address", destination.Model?.Config.Address);
        json.WriteNumber("weight", DestinationWeight.Of(destination));
        json.WriteString("health", DestinationsHealthCheck.IsUp(destination) ? (health.Active == DestinationHealth.Healthy ? "Healthy" : "Unknown") : "Unhealthy");
        json.WriteString("activeHealth", health.Active.ToString());
        json.WriteString("passiveHealth", health.Passive.ToString());
        json.WriteBoolean("ejected", health.Passive == DestinationHealth.Unhealthy);
        json.WriteNumber("inFlight", destination.ConcurrentRequestCount);
        var stats = destinations.For(cluster.ClusterId, destination.DestinationId);
        json.WriteNumber("requests", stats?.Requests ?? 0);
        json.WriteNumber("errors", stats?.Errors ?? 0);
        var (rps, p50, p99, history) = stats?.LastMinute(second) ?? (0, null, null, new long[60]);
        json.WriteNumber("requestsPerSecond", Math.Round(rps, 2));
        WriteNumberOrNull(json, "latencyP50Ms", p50);
        WriteNumberOrNull(json, "latencyP99Ms", p99);
        json.WriteStartArray("requestsLastMinute");
        foreach (var count in history)
        {
            json.WriteNumberValue(count);
        }

        json.WriteEndArray();
        json.WriteEndObject();
    }

    private void WriteAdmission(Utf8JsonWriter json)
    {
        json.WriteStartObject("admission");
        json.WriteStartArray("limits");
        foreach (var limit in admission.Limits)
        {
            json.WriteStartObject();
            json.WriteString("kind", limit.Kind);
            json.WriteString("name", limit.Name);
            json.WriteNumber("limit", limit.CurrentLimit);
            json.WriteBoolean("adaptive", limit.Settings.Auto);
            json.WriteNumber("inUse", limit.InUse);
            json.WriteNumber("queued", limit.QueueDepth);
            json.WriteNumber("rejected", limit.Rejected);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteNumber("rejected", admission.RejectedTotal);
        json.WriteStartObject("connections");
        json.WriteNumber("waiting", connectionAdmission.Waiting);
        json.WriteNumber("acceptWindowInUse", connectionAdmission.AcceptWindowInUse);
        json.WriteNumber("acceptWindowSize", connectionAdmission.AcceptWindowSize);
        json.WriteNumber("delayed", admission.ConnectionsDelayed);
        json.WriteNumber("refused", admission.ConnectionsRefused);
        json.WriteNumber("acceptPausedSeconds", Math.Round(admission.AcceptPausedSeconds, 3));
        var (listenQueueWaiting, listenQueueCapacity) = listenQueue.Read();
        json.WriteNumber("listenQueue", listenQueueWaiting);
        json.WriteNumber("listenQueueCapacity", listenQueueCapacity);
        if (connectionAdmission.Adaptive is { } adaptive)
        {
            json.WriteStartObject("adaptive");
            json.WriteNumber("ratePerSecond", Math.Round(adaptive.Rate));
            json.WriteNumber("targetDelayMs", adaptive.Target.TotalMilliseconds);
            json.WriteBoolean("protectingEstablished", adaptive.ProtectingEstablished);
            json.WriteNumber("measuredDelayMs", Math.Round(adaptive.MeasuredDelay.TotalMilliseconds, 2));
            json.WriteEndObject();
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    private void WriteConnections(Utf8JsonWriter json)
    {
        var (accepted, closed) = Rates();
        json.WriteStartObject("connections");
        json.WriteNumber("open", traffic.OpenConnections);
        json.WriteNumber("accepted", traffic.AcceptedConnections);
        json.WriteNumber("closed", traffic.ClosedConnections);
        json.WriteNumber("acceptedPerSecond", Math.Round(accepted, 2));
        json.WriteNumber("closedPerSecond", Math.Round(closed, 2));
        json.WriteNumber("upgraded", traffic.UpgradedConnections);
        json.WriteNumber("requestsInFlight", traffic.InFlightRequests);
        json.WriteStartObject("backend");
        json.WriteNumber("open", backendConnections.Open);
        if (backendConnections.Limit is { } limit)
        {
            json.WriteNumber("limit", limit);
        }
        else
        {
            json.WriteNull("limit");
        }

        json.WriteNumber("refused", backendConnections.Refused);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    // Accepts and closes per second since the previous reading at least a second ago.
    private (double Accepted, double Closed) Rates()
    {
        lock (_rateLock)
        {
            var now = timeProvider.GetTimestamp();
            var elapsed = timeProvider.GetElapsedTime(_previous.At, now).TotalSeconds;
            if (elapsed >= 1)
            {
                var accepted = traffic.AcceptedConnections;
                var closed = traffic.ClosedConnections;
                _rates = ((accepted - _previous.Accepted) / elapsed, (closed - _previous.Closed) / elapsed);
                _previous = (now, accepted, closed);
            }

            return _rates;
        }
    }

    private static void WriteNumberOrNull(Utf8JsonWriter json, string name, double? value)
    {
        if (value is { } v)
        {
            json.WriteNumber(name, v);
        }
        else
        {
            json.WriteNull(name);
        }
    }
}

/// <summary>Registration and the management-pipeline wiring of the status endpoint.</summary>
internal static class StatusExtensions
{
    public static IServiceCollection AddStatus(this IServiceCollection services)
    {
        services.AddSingleton<DestinationStats>();
        services.AddSingleton<Yarp.ReverseProxy.Model.IClusterChangeListener>(sp => sp.GetRequiredService<DestinationStats>()); // removed and re-addressed destinations
        services.AddSingleton<StatusEndpoint>();
        return services;
    }

    /// <summary>
    /// On the management pipeline only (on the proxy port these paths are ordinary ones): <c>/status.json</c>,
    /// and the page at <c>/status</c> with its script, self-contained (no CDN: it works in an air-gapped cluster).
    /// </summary>
    public static void UseStatus(this IApplicationBuilder management)
    {
        var status = management.ApplicationServices.GetRequiredService<StatusEndpoint>();
        var page = Resource("status.html");
        var script = Resource("status.js");
        management.Use(next => context =>
        {
            if (!HttpMethods.IsGet(context.Request.Method))
            {
                return next(context);
            }

            var path = context.Request.Path;
            if (path.Equals(StatusEndpoint.JsonPath, StringComparison.Ordinal))
            {
                return status.WriteAsync(context);
            }

            if (path.Equals("/status", StringComparison.Ordinal))
            {
                return Static(context, page, "text/html; charset=utf-8");
            }

            return path.Equals("/status.js", StringComparison.Ordinal) ? Static(context, script, "text/javascript; charset=utf-8") : next(context);
        });
    }

    private static Task Static(HttpContext context, byte[] content, string type)
    {
        context.Response.ContentType = type;
        context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"; // data: for the page's own icon, so the browser asks for no /favicon.ico (a 404 and a console error on every load)
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.Body.WriteAsync(content, context.RequestAborted).AsTask();
    }

    private static byte[] Resource(string name)
    {
        using var stream = typeof(StatusExtensions).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The embedded resource {name} is missing from the build.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
