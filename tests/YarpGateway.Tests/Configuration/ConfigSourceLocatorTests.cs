using Microsoft.Extensions.Configuration;
using YarpGateway.Configuration;

namespace YarpGateway.Tests.Configuration;

/// <summary>"Which file set this key?" names the layer that set the value the gateway reads, not a file below it.</summary>
public sealed class ConfigSourceLocatorTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("locator-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private IConfigurationRoot Build(string[] args, IDictionary<string, string?>? environment = null)
    {
        File.WriteAllText(Path.Combine(_directory, "appsettings.json"), """{ "Kestrel": { "Endpoints": { "Management": { "Url": "http://0.0.0.0:8081" } } }, "Other": "x" }""");
        var builder = new ConfigurationBuilder().AddJsonFile(Path.Combine(_directory, "appsettings.json"));
        if (environment is not null)
        {
            builder.AddInMemoryCollection(environment); // stands for a layer that is not a file
        }

        return builder.AddCommandLine(args).Build();
    }

    [Fact]
    public void AKeyOnlyAFileSets_IsThatFiles()
        => Assert.Equal(Path.Combine(_directory, "appsettings.json"), ConfigSourceLocator.FindFile(Build([]), "Kestrel:Endpoints:Management:Url"));

    [Fact]
    public void AKeyTheCommandLineOverrides_IsTheCommandLines_NotTheFileBelowIt()
    {
        // Before: the file was named, though its value was not the one read.
        var root = Build(["--Kestrel:Endpoints:Management:Url=http://0.0.0.0:8080"]);

        Assert.Equal("command line", ConfigSourceLocator.FindFile(root, "Kestrel:Endpoints:Management:Url"));
        Assert.Equal(Path.Combine(_directory, "appsettings.json"), ConfigSourceLocator.FindFile(root, "Other"));
    }

    [Fact]
    public void AKeyAnotherLayerOverrides_IsNotAttributedToTheFile()
        => Assert.Null(ConfigSourceLocator.FindFile(Build([], new Dictionary<string, string?> { ["Other"] = "y" }), "Other"));
}
