using System.Diagnostics;

namespace YarpGateway.Tests.Telemetry;

/// <summary>Runs Debian's promtool. In CI (CI=true) a missing promtool fails the test; elsewhere it is reported.</summary>
internal static class Promtool
{
    public static string? Path { get; } = Environment.GetEnvironmentVariable("PATH")!.Split(':')
        .Select(p => System.IO.Path.Combine(p, "promtool")).FirstOrDefault(File.Exists);

    /// <summary>Returns null when promtool is absent outside CI (the caller reports it), else (exit code, output).</summary>
    public static async Task<(int ExitCode, string Output)?> RunAsync(string[] args, string? stdin = null)
    {
        if (Path is null)
        {
            Assert.False(string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase),
                "promtool is not installed; CI must install Debian's prometheus package (.ci/run does).");
            return null;
        }

        var start = new ProcessStartInfo(Path, args) { RedirectStandardInput = stdin is not null, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }

        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
