namespace YarpGateway.Tests.Deploy;

/// <summary>
/// The Dockerfiles cannot be built here (no Docker engine); these keep them correct by review. <c>deploy/Dockerfile</c> is
/// the image (a JIT build); <c>deploy/Dockerfile.aot</c> the native AOT one an operator may pick instead, whose publish is
/// the one CI checks (<c>tests/aot/check.sh</c>).
/// </summary>
public class DockerfileTests
{
    private const string Jit = "deploy/Dockerfile";
    private const string Aot = "deploy/Dockerfile.aot";

    /// <summary>The instructions, continuation lines joined, comments and blank lines left out.</summary>
    private static string[] Lines(string dockerfile)
        => File.ReadAllText(RepositoryFiles.PathOf(dockerfile)).Replace("\\\n", " ", StringComparison.Ordinal).Split('\n')
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();

    private static List<string> Froms(string dockerfile) => Lines(dockerfile).Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();

    [Fact]
    public void MultiStage_SdkBuildsAndAspNetRuntimeRuns()
    {
        var froms = Froms(Jit);
        Assert.Equal(2, froms.Count);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/sdk:10.0.", froms[0], StringComparison.Ordinal);
        Assert.EndsWith(" AS build", froms[0], StringComparison.Ordinal);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:10.0", froms[1], StringComparison.Ordinal);
        Assert.Contains("chiseled", froms[1], StringComparison.Ordinal); // no shell at run time
        Assert.Equal("ENTRYPOINT [\"dotnet\", \"/app/YarpGateway.dll\"]", Lines(Jit).Last(l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal)));
    }

    [Fact]
    public void TheAotImage_SdkAotBuildsAndRuntimeDepsRuns_TheExecutableItself()
    {
        var froms = Froms(Aot);
        Assert.Equal(2, froms.Count);
        Assert.EndsWith("-noble-aot AS build", froms[0], StringComparison.Ordinal); // clang and the linker's libraries
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/runtime-deps:10.0", froms[1], StringComparison.Ordinal); // no .NET runtime needed
        Assert.Contains("chiseled", froms[1], StringComparison.Ordinal);
        Assert.Equal("ENTRYPOINT [\"/app/YarpGateway\"]", Lines(Aot).Last(l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal)));
    }

    [Fact]
    public void TheAotImage_RestoresAndPublishes_AsCiChecksIt()
    {
        // The publish tests/aot/check.sh makes and checks (its --check answers and the process tests); the restore must name
        // the same runtime and AOT, or the publish (--no-restore) has no assets for linux-x64 and no ILCompiler.
        var check = File.ReadAllText(RepositoryFiles.PathOf("tests/aot/check.sh"));
        const string Native = "-r linux-x64 -p:PublishAot=true";
        Assert.Contains("dotnet publish src/YarpGateway -c Release " + Native, check, StringComparison.Ordinal);

        var runs = Lines(Aot).Where(l => l.StartsWith("RUN ", StringComparison.Ordinal)).ToList();
        Assert.Contains(runs, l => l.StartsWith("RUN dotnet restore src/YarpGateway/YarpGateway.csproj " + Native, StringComparison.Ordinal));
        Assert.Contains(runs, l => l.StartsWith("RUN dotnet publish src/YarpGateway/YarpGateway.csproj -c Release " + Native + " -o /app --no-restore", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Jit)]
    [InlineData(Aot)]
    public void RunsAsNonRoot_ExposesBothPorts_NoHealthcheck(string dockerfile)
    {
        var lines = Lines(dockerfile);
        var user = lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..];
        Assert.DoesNotContain(user, new[] { "root", "0" });
        Assert.Contains("EXPOSE 8080 8081", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Jit)]
    [InlineData(Aot)]
    public void BothImages_RunTheServerCollector_WithNoDefaultPort(string dockerfile)
    {
        var env = Lines(dockerfile).Single(l => l.StartsWith("ENV ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("ASPNETCORE_HTTP_PORTS=", env); // Kestrel's endpoints come from appsettings.json
        Assert.Contains("DOTNET_gcServer=1", env);
    }

    [Fact]
    public void TheImage_OptimizesHotCodeWithoutTheOneCpuDelay()
    {
        // The runtime reads this from the environment only (a runtimeconfig.json property is ignored). The AOT image has no
        // tiering to set.
        Assert.Contains(Lines(Jit), l => l.Contains(RuntimeDefaults.TieringDelaySingleProcMultiplier + "=1", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(Jit)]
    [InlineData(Aot)]
    public void EverythingItCopiesExists(string dockerfile)
    {
        foreach (var copy in Lines(dockerfile).Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal)))
        {
            var sources = copy["COPY ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1];
            foreach (var source in sources)
            {
                Assert.True(File.Exists(RepositoryFiles.PathOf(source)) || Directory.Exists(RepositoryFiles.PathOf(source)), $"{dockerfile} copies {source}, which does not exist");
            }
        }
    }

    [Theory]
    [InlineData(Jit, "")]
    [InlineData(Aot, "-noble-aot")]
    public void TheSdkIsPinnedToOneFeatureBand_TheSameInGlobalJsonAndTheImage(string dockerfile, string variant)
    {
        using var globalJson = System.Text.Json.JsonDocument.Parse(File.ReadAllText(RepositoryFiles.PathOf("global.json")));
        var sdk = globalJson.RootElement.GetProperty("sdk");
        var version = sdk.GetProperty("version").GetString()!;
        Assert.Equal("latestPatch", sdk.GetProperty("rollForward").GetString()); // patches only, never a new feature band
        var lines = Lines(dockerfile);
        Assert.Contains($"FROM mcr.microsoft.com/dotnet/sdk:{version}{variant} AS build", lines);
        Assert.Contains(lines, l => l.StartsWith("COPY global.json ", StringComparison.Ordinal));
    }

    [Fact]
    public void TheBuildContextLeavesOutEveryBinAndObj()
    {
        var ignored = File.ReadAllLines(RepositoryFiles.PathOf(".dockerignore")).Select(l => l.Trim()).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
    }
}
