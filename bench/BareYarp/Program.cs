// Bare YARP, as its getting-started guide sets it up: routes from configuration, MapReverseProxy.
// bench/run.sh passes the route, the cluster and the endpoints on the command line.
// One addition: /__allocated, the process's allocated bytes so far, for bench/alloc.sh.
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
var app = builder.Build();
app.MapReverseProxy();
app.MapGet("/__allocated", () => GC.GetTotalAllocatedBytes()); // bench/alloc.sh reads it before and after a run
app.Run();
