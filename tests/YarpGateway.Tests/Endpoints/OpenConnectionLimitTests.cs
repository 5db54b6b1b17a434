using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using YarpGateway.Endpoints;

namespace YarpGateway.Tests.Endpoints;

public class OpenConnectionLimitTests
{
    [Theory]
    [InlineData(20_000L, 9_500)] // this machine: a twentieth (1,000) kept, half of the rest
    [InlineData(1_048_576L, 498_074)] // a container's usual hard limit
    [InlineData(1_024L, 256)] // the classic default: 512 kept
    [InlineData(600L, 44)]
    [InlineData(100L, 1)] // too low to leave anything: one at a time, not none
    public void TheDefault_IsHalfOfWhatTheOpenFileLimitLeaves(long files, int expected)
        => Assert.Equal(expected, OpenConnectionLimit.FromOpenFileLimit(files));

    [Fact]
    public void NoOpenFileLimit_NoDefault()
        => Assert.Null(OpenConnectionLimit.FromOpenFileLimit(null));

    [Theory]
    [InlineData("Max open files            20000                20000                files     \n", 20_000L)]
    [InlineData("Max open files            unlimited            unlimited            files     \n", null)]
    [InlineData("Max processes             127451               127451               processes \n", null)]
    public void TheSoftLimit_IsReadFromProcLimits(string text, long? expected)
        => Assert.Equal(expected, OpenConnectionLimit.ParseOpenFileLimit("Limit                     Soft Limit           Hard Limit           Units     \n" + text));

    [Fact]
    public void ThisProcess_HasAnOpenFileLimit()
        => Assert.InRange(OpenConnectionLimit.ReadOpenFileLimit() ?? long.MaxValue, 1, long.MaxValue);

    [Fact]
    public async Task AtTheLimit_TheNextWaits_UntilATrackedConnectionCloses()
    {
        var limit = new OpenConnectionLimit(maxOpen: 2, openFileLimit: 20_000, new FakeTimeProvider(), NullLogger<OpenConnectionLimit>.Instance);
        using var first = new Closable();
        using var second = new Closable();
        await limit.WaitForRoomAsync(CancellationToken.None);
        limit.Track(first.Connection);
        await limit.WaitForRoomAsync(CancellationToken.None);
        limit.Track(second.Connection);
        Assert.Equal(2, limit.Open);

        var third = limit.WaitForRoomAsync(CancellationToken.None).AsTask();
        Assert.False(third.IsCompleted);

        second.Close();
        await third.WaitAsync(TimeSpan.FromSeconds(10));
        limit.Return(); // the third was not accepted after all
        Assert.Equal(1, limit.Open);
    }

    [Fact]
    public void WithoutALimit_NothingWaits()
    {
        var limit = new OpenConnectionLimit(maxOpen: null, openFileLimit: null, new FakeTimeProvider(), NullLogger<OpenConnectionLimit>.Instance);
        Assert.Null(limit.Limit);
        for (var i = 0; i < 1000; i++)
        {
            Assert.True(limit.WaitForRoomAsync(CancellationToken.None).AsTask().IsCompletedSuccessfully);
        }
    }

    private sealed class Closable : IDisposable
    {
        private readonly CancellationTokenSource _closed = new();

        public Closable() => Connection = new DefaultConnectionContext { ConnectionClosed = _closed.Token };

        public ConnectionContext Connection { get; }

        public void Close() => _closed.Cancel();

        public void Dispose() => _closed.Dispose();
    }
}
