// Bare YARP, as its getting-started guide sets it up: routes from configuration, MapReverseProxy.
// bench/run.sh passes the route, the cluster and the endpoints on the command line.
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
var app = builder.Build();
app.MapReverseProxy();
app.Run();
