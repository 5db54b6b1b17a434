using System.Collections.Concurrent;

namespace YarpGateway.Tests.Functional;

/// <summary>Sends a fixed number of GETs through the gateway with a few concurrent workers and tallies who answered.</summary>
internal static class Load
{
    public sealed record Result(IReadOnlyDictionary<string, int> ByBackend, int Failures, IReadOnlyList<string> FailureSamples)
    {
        public int Total => ByBackend.Values.Sum() + Failures;

        public double Share(string backend) => ByBackend.TryGetValue(backend, out var n) ? (double)n / Total : 0;
    }

    public static async Task<Result> RunAsync(GatewayUnderTest gateway, int requests, int workers, string path = "/", CancellationToken cancellationToken = default)
    {
        var byBackend = new ConcurrentDictionary<string, int>();
        var failures = 0;
        var samples = new ConcurrentQueue<string>();
        var remaining = requests;
        using var client = gateway.CreateProxyClient();

        async Task Worker()
        {
            while (Interlocked.Decrement(ref remaining) >= 0 && !cancellationToken.IsCancellationRequested)
            {
                try
                {
                    using var response = await client.GetAsync(path, cancellationToken);
                    var body = await response.Content.ReadAsStringAsync(cancellationToken);
                    if (response.IsSuccessStatusCode)
                    {
                        byBackend.AddOrUpdate(body, 1, (_, n) => n + 1);
                        continue;
                    }

                    samples.Enqueue($"{(int)response.StatusCode} {body}");
                }
                catch (HttpRequestException ex)
                {
                    samples.Enqueue(ex.Message);
                }

                Interlocked.Increment(ref failures);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(Worker, cancellationToken)));
        return new Result(byBackend, failures, samples.Take(5).ToList());
    }
}
