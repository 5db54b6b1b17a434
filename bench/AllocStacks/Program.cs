// AllocStacks <pid> <seconds> [type-filter,...] [top]
// Samples a running process's allocations for a few seconds (the runtime's AllocationTick event, one
// per about 100 KB allocated, with its managed call stack, over EventPipe) and prints the samples by
// type, then the most frequent call stacks of the types whose names contain one of the filters:
// where each allocation comes from. Under steady load, a type's share of the samples is its share of
// the bytes allocated. Method names come from the session's rundown.
using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

if (args.Length < 2 || !int.TryParse(args[0], CultureInfo.InvariantCulture, out var pid) || !int.TryParse(args[1], CultureInfo.InvariantCulture, out var seconds))
{
    Console.Error.WriteLine("usage: AllocStacks <pid> <seconds> [type-filter,...] [top]");
    return 2;
}

string[] filters = args.Length > 2 ? args[2].Split(',', StringSplitOptions.RemoveEmptyEntries) : [];
var top = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 30;
// DEPTH: the frames kept of each stack (12 by default). INCLUSIVE=1 adds a table of methods by the samples whose stacks
// hold them, every type counted: where a burst of work (a configuration reload, say) allocates, at any depth.
var depth = int.TryParse(Environment.GetEnvironmentVariable("DEPTH"), CultureInfo.InvariantCulture, out var d) ? d : 12;
var inclusive = Environment.GetEnvironmentVariable("INCLUSIVE") == "1";
var byMethod = new Dictionary<string, int>(StringComparer.Ordinal);
var path = Path.Combine(Path.GetTempPath(), $"allocstacks-{pid}-{Environment.ProcessId}.nettrace");

// The GC keyword at Verbose is what carries AllocationTick; the rundown at the end names the methods.
var provider = new EventPipeProvider(ClrTraceEventParser.ProviderName, EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GC);
var client = new DiagnosticsClient(pid);
using (var session = client.StartEventPipeSession([provider], requestRundown: true))
using (var file = File.Create(path))
{
    var copy = session.EventStream.CopyToAsync(file);
    await Task.Delay(TimeSpan.FromSeconds(seconds));
    await session.StopAsync(CancellationToken.None);
    await copy;
}

var etlx = TraceLog.CreateFromEventPipeDataFile(path);
var byType = new Dictionary<string, int>(StringComparer.Ordinal);
var stacks = new Dictionary<string, int>(StringComparer.Ordinal);
var total = 0;
using (var log = new TraceLog(etlx))
{
    foreach (var data in log.Events)
    {
        if (data is not GCAllocationTickTraceData tick)
        {
            continue;
        }

        total++;
        var type = tick.TypeName ?? "?";
        byType[type] = byType.GetValueOrDefault(type) + 1;
        if (inclusive)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var frame = data.CallStack(); frame is not null; frame = frame.Caller)
            {
                if (frame.CodeAddress.FullMethodName is { Length: > 0 } method && seen.Add(method))
                {
                    byMethod[method] = byMethod.GetValueOrDefault(method) + 1;
                }
            }
        }

        if (!filters.Any(f => type.Contains(f, StringComparison.Ordinal)))
        {
            continue;
        }

        var frames = new List<string>();
        for (var frame = data.CallStack(); frame is not null && frames.Count < depth; frame = frame.Caller)
        {
            var name = frame.CodeAddress.FullMethodName;
            frames.Add(string.IsNullOrEmpty(name) ? "0x" + frame.CodeAddress.Address.ToString("x", CultureInfo.InvariantCulture) : name);
        }

        var key = type + Environment.NewLine + "    " + string.Join(Environment.NewLine + "    ", frames);
        stacks[key] = stacks.GetValueOrDefault(key) + 1;
    }
}

File.Delete(path);
File.Delete(etlx);
Console.WriteLine($"{total} allocation samples in {seconds} s (one per about 100 KB allocated)");
foreach (var (type, count) in byType.OrderByDescending(e => e.Value).Take(top))
{
    Console.WriteLine($"{100.0 * count / Math.Max(1, total),6:F2} % {count,7}  {type}");
}

if (inclusive)
{
    Console.WriteLine("--- methods by the samples whose stacks hold them");
    foreach (var (method, count) in byMethod.OrderByDescending(e => e.Value).Take(top))
    {
        Console.WriteLine($"{100.0 * count / Math.Max(1, total),6:F2} % {count,7}  {method}");
    }
}

foreach (var (stack, count) in stacks.OrderByDescending(e => e.Value).Take(top))
{
    Console.WriteLine($"--- {count} samples");
    Console.WriteLine(stack);
}

return 0;
