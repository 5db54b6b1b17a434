namespace YarpGateway.Demo;

/// <summary>Options under <c>Gateway:DemoBackends</c>.</summary>
internal sealed class DemoBackendsOptions
{
    public const string SectionName = "Gateway:DemoBackends";

    /// <summary>Hosts two echo backends in the gateway process, on 127.0.0.1:5101 and :5102. Default <c>false</c>; <c>true</c> in Development.</summary>
    public bool Enabled { get; set; }
}
