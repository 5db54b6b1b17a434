using YarpGateway.Admission;

namespace YarpGateway.Tests.Admission;

public class AcceptWindowTests
{
    private static readonly TimeSpan Target = TimeSpan.FromMilliseconds(20);

    [Fact]
    public void PlacesUpToTheSize_ThenNone_UntilOneIsGivenBack()
    {
        var window = new AcceptWindow(3);
        Assert.True(window.TryTake());
        Assert.True(window.TryTake());
        Assert.True(window.TryTake());
        Assert.False(window.TryTake());
        Assert.Equal(3, window.InUse);

        var room = window.WaitForRoomAsync(CancellationToken.None);
        Assert.False(room.IsCompleted);
        window.Give();
        Assert.True(room.IsCompleted);
        Assert.True(window.TryTake());
    }

    [Fact]
    public void ItKeepsUp_AtStart_AndWhileTheDelayIsUnderHalfTheTarget()
    {
        var window = new AcceptWindow(8);
        Assert.True(window.KeepingUp);

        window.Update(TimeSpan.FromMilliseconds(10), Target);
        Assert.False(window.KeepingUp);
        window.Update(TimeSpan.FromMilliseconds(9.9), Target);
        Assert.True(window.KeepingUp);
        window.Update(TimeSpan.FromMilliseconds(50), Target);
        Assert.False(window.KeepingUp);
    }

    [Fact]
    public void OverTheTarget_TheSizeIsCutTo70PercentEachPeriod_DownToAnEighth()
    {
        var window = new AcceptWindow(64);
        var sizes = Enumerable.Range(0, 10).Select(_ => window.Update(TimeSpan.FromMilliseconds(50), Target)).ToArray();

        Assert.Equal([44, 30, 21, 14, 9, 8, 8, 8, 8, 8], sizes);
        Assert.Equal(8, window.MinSize);
    }

    [Fact]
    public void UnderHalfTheTarget_ItGrowsByAQuarter_OnlyWhileAnAcceptFoundItFull_UpToItsMaximum()
    {
        var window = new AcceptWindow(64);
        window.Update(TimeSpan.FromMilliseconds(50), Target);
        window.Update(TimeSpan.FromMilliseconds(50), Target);
        Assert.Equal(30, window.Size);

        // No demand: it stays.
        Assert.Equal(30, window.Update(TimeSpan.FromMilliseconds(1), Target));

        var sizes = new List<int>();
        for (var i = 0; i < 6; i++)
        {
            while (window.TryTake())
            {
            }

            sizes.Add(window.Update(TimeSpan.FromMilliseconds(1), Target));
        }

        Assert.Equal([37, 46, 57, 64, 64, 64], sizes);
    }

    [Fact]
    public void BetweenHalfTheTargetAndTheTarget_ItHolds_EvenWhenFull()
    {
        var window = new AcceptWindow(16);
        window.Update(TimeSpan.FromMilliseconds(50), Target);
        Assert.Equal(11, window.Size);
        while (window.TryTake())
        {
        }

        Assert.Equal(11, window.Update(TimeSpan.FromMilliseconds(15), Target));
    }

    [Fact]
    public void ACutWindow_TakesNoneUntilEnoughAreGivenBack_AndAGrownOne_WakesTheWaiter()
    {
        var window = new AcceptWindow(10);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(window.TryTake());
        }

        window.Update(TimeSpan.FromMilliseconds(50), Target); // 7 places, 10 in use
        var room = window.WaitForRoomAsync(CancellationToken.None);
        for (var i = 0; i < 3; i++)
        {
            window.Give();
        }

        Assert.False(room.IsCompleted); // 7 in use of 7
        Assert.False(window.TryTake());

        window.Update(TimeSpan.FromMilliseconds(1), Target); // demand seen: 8 places
        Assert.True(room.IsCompleted);
        Assert.True(window.TryTake());
    }

    [Fact]
    public async Task AWaitForRoom_EndsWithItsToken()
    {
        var window = new AcceptWindow(1);
        Assert.True(window.TryTake());
        using var stop = new CancellationTokenSource();
        var room = window.WaitForRoomAsync(stop.Token);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => room);
    }
}
