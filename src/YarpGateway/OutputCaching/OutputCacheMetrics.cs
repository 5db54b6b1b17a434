using System.Diagnostics.Metrics;
using YarpGateway.Telemetry;

namespace YarpGateway.OutputCaching;

/// <summary>The output cache's fill and hit rate, read from its store at each collection (nothing recorded per request).</summary>
internal sealed class OutputCacheMetrics
{
    public OutputCacheMetrics(IMeterFactory meterFactory, OutputCacheMemoryStore store)
    {
        var meter = meterFactory.Create(GatewayMeter.Name);
        meter.CreateObservableGauge("gateway.output_cache.entries", () => store.Read().Entries, unit: "{entry}", description: "Responses the output cache holds.");
        meter.CreateObservableGauge("gateway.output_cache.size", () => store.Read().Bytes, unit: "By",
            description: "Bytes the output cache's entries are counted as (response, key and the cache's record of each), against Gateway:OutputCache:SizeLimit.");
        meter.CreateObservableCounter("gateway.output_cache.lookups", ObserveLookups, unit: "{lookup}",
            description: "Lookups in the output cache, by result: hit (served from the cache) or miss (sent to the backend; with Locking, possibly answered by the request already fetching the entry).");

        IEnumerable<Measurement<long>> ObserveLookups()
        {
            var (_, _, hits, misses) = store.Read();
            return [new(hits, new KeyValuePair<string, object?>("result", "hit")), new(misses, new KeyValuePair<string, object?>("result", "miss"))];
        }
    }
}
