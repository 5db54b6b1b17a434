// HeapStat <pid> [top] [type-filter]
// Suspends the process, marks every object reachable from the GC roots and prints the live bytes by
// type (the top N, optionally only types whose name contains the filter) and by owner (Kestrel and
// ASP.NET Core, YARP, HttpClient, the gateway, ...). Dead objects the GC has not collected yet are
// left out, so the figures are what idle connections really hold, whatever the GC mode.
// With HEAPSTAT_CALLBACKS=1 it also groups the live cancellation callbacks (CancellationTokenSource's
// CallbackNode, 80 bytes each plus their share of the token's registrations) by the method each
// calls and the type of its state: who registered on which token.
// With HEAPSTAT_STRINGS=1 it groups the live strings by their first 24 characters (digits as #), and
// with HEAPSTAT_HOLDERS=<filter>|<filter>... it groups the live objects whose type contains a filter by
// the type of the object that first reached them while marking: who holds what.
// With HEAPSTAT_GEN0=1 it prints, instead, everything in gen0, dead or alive, by type: taken under
// steady load, what the process allocates (an allocation profile without a trace).
using System.Globalization;
using Microsoft.Diagnostics.Runtime;

if (args.Length < 1 || !int.TryParse(args[0], CultureInfo.InvariantCulture, out var pid))
{
    Console.Error.WriteLine("usage: HeapStat <pid> [top] [type-filter]");
    return 2;
}

var top = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
var filter = args.Length > 2 ? args[2] : null;

using var target = DataTarget.AttachToProcess(pid, suspend: true);
using var runtime = target.ClrVersions[0].CreateRuntime();
var heap = runtime.Heap;

if (Environment.GetEnvironmentVariable("HEAPSTAT_GEN0") == "1")
{
    // Everything in gen0, dead or alive: what the process allocated since its last collection. Taken
    // under steady load, the shares by type are an allocation profile of the requests it served.
    var recent = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
    long recentBytes = 0;
    foreach (var obj in heap.EnumerateObjects())
    {
        if (!obj.IsValid || obj.IsFree || heap.GetSegmentByAddress(obj.Address)?.GetGeneration(obj.Address) != Generation.Generation0)
        {
            continue;
        }

        var name = obj.Type?.Name ?? "?";
        var (count, bytes) = recent.GetValueOrDefault(name);
        recent[name] = (count + 1, bytes + (long)obj.Size);
        recentBytes += (long)obj.Size;
    }

    Console.WriteLine($"gen0: {recentBytes:N0} bytes");
    foreach (var (name, (count, bytes)) in recent.OrderByDescending(e => e.Value.Bytes).Take(top))
    {
        Console.WriteLine($"{100.0 * bytes / Math.Max(1, recentBytes),6:F2} % {bytes,12:N0} {count,9:N0}  {name}");
    }

    return 0;
}

var live = new HashSet<ulong>();
var holdersOf = Environment.GetEnvironmentVariable("HEAPSTAT_HOLDERS");
var holder = new Dictionary<ulong, ulong>();
var pending = new Stack<ClrObject>();
foreach (var root in heap.EnumerateRoots())
{
    if (root.Object.IsValid && live.Add(root.Object.Address))
    {
        pending.Push(root.Object);
    }
}

while (pending.Count > 0)
{
    var parent = pending.Pop();
    foreach (var reference in parent.EnumerateReferences(carefully: false, considerDependantHandles: true))
    {
        if (reference.IsValid && live.Add(reference.Address))
        {
            pending.Push(reference);
            if (holdersOf is not null && reference.Type?.Name is { } name && holdersOf.Split('|').Any(h => name.Contains(h, StringComparison.Ordinal)))
            {
                holder[reference.Address] = parent.Address;
            }
        }
    }
}

var byType = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
long liveBytes = 0, allBytes = 0;
foreach (var obj in heap.EnumerateObjects())
{
    if (!obj.IsValid || obj.IsFree)
    {
        continue;
    }

    allBytes += (long)obj.Size;
    if (!live.Contains(obj.Address))
    {
        continue;
    }

    liveBytes += (long)obj.Size;
    var name = obj.Type?.Name ?? "?";
    if (obj.Type?.IsArray == true)
    {
        name += obj.Size switch { < 1024 => " [<1K]", < 8192 => " [1-8K]", < 65536 => " [8-64K]", _ => " [>=64K]" };
    }

    byType.TryGetValue(name, out var sum);
    byType[name] = (sum.Count + 1, sum.Bytes + (long)obj.Size);
}

Console.WriteLine("live bytes    objects  type");
foreach (var (name, sum) in byType.Where(t => filter is null || t.Key.Contains(filter, StringComparison.Ordinal)).OrderByDescending(t => t.Value.Bytes).Take(top))
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{sum.Bytes,12:N0} {sum.Count,9:N0}  {name}"));
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"live {liveBytes:N0} of {allBytes:N0} bytes in heap objects"));
if (Environment.GetEnvironmentVariable("HEAPSTAT_CALLBACKS") == "1")
{
    var callbacks = new Dictionary<string, long>(StringComparer.Ordinal);
    foreach (var obj in heap.EnumerateObjects())
    {
        if (!obj.IsValid || obj.Type?.Name != "System.Threading.CancellationTokenSource+CallbackNode" || !live.Contains(obj.Address))
        {
            continue;
        }

        var callback = obj.ReadObjectField("Callback");
        var method = callback.IsValid && callback.IsDelegate ? callback.AsDelegate().GetDelegateTarget()?.Method?.Signature ?? "?" : "(none)";
        var state = obj.ReadObjectField("CallbackState");
        var key = $"{method}  state: {(state.IsValid ? state.Type?.Name : "null")}";
        callbacks[key] = callbacks.GetValueOrDefault(key) + 1;
    }

    Console.WriteLine("callbacks  registered method, state");
    foreach (var (key, count) in callbacks.OrderByDescending(c => c.Value).Take(top))
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count,9:N0}  {key}"));
    }
}

if (Environment.GetEnvironmentVariable("HEAPSTAT_STRINGS") == "1")
{
    var strings = new Dictionary<string, (long Count, long Bytes)>(StringComparer.Ordinal);
    foreach (var obj in heap.EnumerateObjects())
    {
        if (!obj.IsValid || obj.Type?.IsString != true || !live.Contains(obj.Address))
        {
            continue;
        }

        var value = obj.AsString(24) ?? "";
        var key = new string(value.Select(c => char.IsAsciiDigit(c) ? '#' : char.IsControl(c) ? '.' : c).ToArray());
        var sum = strings.GetValueOrDefault(key);
        strings[key] = (sum.Count + 1, sum.Bytes + (long)obj.Size);
    }

    Console.WriteLine("live bytes    strings  first characters");
    foreach (var (key, sum) in strings.OrderByDescending(s => s.Value.Bytes).Take(top))
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{sum.Bytes,12:N0} {sum.Count,9:N0}  {key}"));
    }
}

if (holdersOf is not null)
{
    var holders = new Dictionary<string, long>(StringComparer.Ordinal);
    foreach (var (child, parent) in holder)
    {
        var key = $"{heap.GetObjectType(child)?.Name} <- {heap.GetObjectType(parent)?.Name}";
        holders[key] = holders.GetValueOrDefault(key) + 1;
    }

    Console.WriteLine("objects  type <- held by");
    foreach (var (key, count) in holders.OrderByDescending(h => h.Value).Take(top))
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{count,9:N0}  {key}"));
    }
}

Console.WriteLine("live bytes    by owner");
foreach (var owner in byType.GroupBy(t => Owner(t.Key)).OrderByDescending(g => g.Sum(t => t.Value.Bytes)))
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{owner.Sum(t => t.Value.Bytes),12:N0}  {owner.Key}"));
}

return 0;

// An async state machine box is named after its method, so it counts for the method's owner.
static string Owner(string type) =>
    type.Contains("YarpGateway", StringComparison.Ordinal) ? "gateway" :
    type.Contains("Yarp.ReverseProxy", StringComparison.Ordinal) ? "YARP" :
    type.Contains("Kestrel", StringComparison.Ordinal) || type.Contains("System.IO.Pipelines", StringComparison.Ordinal) || type.Contains("Microsoft.AspNetCore", StringComparison.Ordinal) ? "Kestrel / ASP.NET Core" :
    type.Contains("System.Net.Http", StringComparison.Ordinal) ? "HttpClient (SocketsHttpHandler)" :
    type.Contains("System.Net.Sockets", StringComparison.Ordinal) ? "sockets" :
    type.Contains("OpenTelemetry", StringComparison.Ordinal) ? "OpenTelemetry" :
    "shared types (strings, byte[], CancellationTokenSource, locks, dictionaries)";
