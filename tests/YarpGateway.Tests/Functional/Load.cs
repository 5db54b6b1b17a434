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

    /// <summary>Requests completed so far by a running load; lets a test act at a point in the load, not at a time.</summary>
    public sealed class Progress
    {
        private int _completed;

        public int Completed => Volatile.Read(ref _completed);

        internal void Add() => Interlocked.Increment(ref _completed);
    }

    public static async Task<Result> RunAsync(GatewayUnderTest gateway, int requests, int workers, string path = "/", Progress? progress = null, CancellationToken cancellationToken = default)
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
                        progress?.Add();
                        continue;
                    }

                    samples.Enqueue($"{(int)response.StatusCode} {body}");
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    // The caller stopped the load; a request cut short by that is not a failure.
                    return;
                }
                catch (HttpRequestException ex)
                {
                    samples.Enqueue(ex.Message);
                }

                Interlocked.Increment(ref failures);
                progress?.Add();
            }
        }

        await Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(Worker, CancellationToken.None)));
        return new Result(byBackend, failures, samples.Take(5).ToList());
    }
}
