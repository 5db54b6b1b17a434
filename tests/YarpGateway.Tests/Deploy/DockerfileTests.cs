namespace YarpGateway.Tests.Deploy;

/// <summary>The Dockerfile cannot be built here (no Docker engine); these keep it correct by review.</summary>
public class DockerfileTests
{
    private static readonly string[] Lines = File.ReadAllLines(RepositoryFiles.PathOf("deploy/Dockerfile"))
        .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();

    [Fact]
    public void MultiStage_SdkBuildsAndAspNetRuntimeRuns()
    {
        var froms = Lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, froms.Count);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/sdk:10.0.", froms[0], StringComparison.Ordinal);
        Assert.EndsWith(" AS build", froms[0], StringComparison.Ordinal);
        Assert.StartsWith("FROM mcr.microsoft.com/dotnet/aspnet:10.0", froms[1], StringComparison.Ordinal);
        Assert.Contains("chiseled", froms[1], StringComparison.Ordinal); // no shell at run time
    }

    [Fact]
    public void RunsAsNonRoot_ExposesBothPorts_NoHealthcheck_ExecFormEntrypoint()
    {
        var user = Lines.Last(l => l.StartsWith("USER ", StringComparison.Ordinal))["USER ".Length..];
        Assert.DoesNotContain(user, new[] { "root", "0" });
        Assert.Contains("EXPOSE 8080 8081", Lines);
        Assert.DoesNotContain(Lines, l => l.StartsWith("HEALTHCHECK", StringComparison.Ordinal));
        Assert.Equal("ENTRYPOINT [\"dotnet\", \"/app/YarpGateway.dll\"]", Lines.Last(l => l.StartsWith("ENTRYPOINT", StringComparison.Ordinal)));
    }

    [Fact]
    public void TheImage_OptimizesHotCodeWithoutTheOneCpuDelay()
    {
        // The runtime reads this from the environment only (a runtimeconfig.json property is ignored).
        Assert.Contains(Lines, l => l.Contains(RuntimeDefaults.TieringDelaySingleProcMultiplier + "=1", StringComparison.Ordinal));
    }

    [Fact]
    public void EverythingItCopiesExists()
    {
        foreach (var copy in Lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal)))
        {
            var sources = copy["COPY ".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1];
            foreach (var source in sources)
            {
                Assert.True(File.Exists(RepositoryFiles.PathOf(source)) || Directory.Exists(RepositoryFiles.PathOf(source)), $"Dockerfile copies {source}, which does not exist");
            }
        }
    }

    [Fact]
    public void TheSdkIsPinnedToOneFeatureBand_TheSameInGlobalJsonAndTheImage()
    {
        using var globalJson = System.Text.Json.JsonDocument.Parse(File.ReadAllText(RepositoryFiles.PathOf("global.json")));
        var sdk = globalJson.RootElement.GetProperty("sdk");
        var version = sdk.GetProperty("version").GetString()!;
        Assert.Equal("latestPatch", sdk.GetProperty("rollForward").GetString()); // patches only, never a new feature band
        Assert.Contains($"FROM mcr.microsoft.com/dotnet/sdk:{version} AS build", Lines);
        Assert.Contains(Lines, l => l.StartsWith("COPY global.json ", StringComparison.Ordinal));
    }

    [Fact]
    public void TheBuildContextLeavesOutEveryBinAndObj()
    {
        var ignored = File.ReadAllLines(RepositoryFiles.PathOf(".dockerignore")).Select(l => l.Trim()).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
    }
}
