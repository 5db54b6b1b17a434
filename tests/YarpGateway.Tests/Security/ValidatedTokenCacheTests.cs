using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.Tokens;
using YarpGateway.Security;
using YarpGateway.Tests.Resilience;

namespace YarpGateway.Tests.Security;

/// <summary>The validated-token cache, on a manual clock, around a validator that counts its calls.</summary>
public class ValidatedTokenCacheTests
{
    private static readonly TokenValidationParameters Parameters = new();

    [Fact]
    public async Task TheSameValidToken_IsValidatedOnce_ThenServedFromTheCache_ForAtMostAMinute()
    {
        var clock = new FakeTimeProvider();
        var inner = new CountingHandler(clock, validFor: TimeSpan.FromHours(1));
        var cache = new ValidatedTokenCache(inner, capacity: 100, clock);

        var first = await cache.ValidateTokenAsync("token-a", Parameters);
        var second = await cache.ValidateTokenAsync("token-a", Parameters);
        Assert.True(first.IsValid && second.IsValid);
        Assert.Same(first, second);
        Assert.Equal(1, inner.Calls);

        clock.Advance(ValidatedTokenCache.MaxAge);
        await cache.ValidateTokenAsync("token-a", Parameters);
        Assert.Equal(2, inner.Calls); // validated again: a removed key stops counting within a minute
    }

    [Fact]
    public async Task AToken_IsNeverServedPastItsOwnExpiry()
    {
        var clock = new FakeTimeProvider();
        var inner = new CountingHandler(clock, validFor: TimeSpan.FromSeconds(10));
        var cache = new ValidatedTokenCache(inner, capacity: 100, clock);

        await cache.ValidateTokenAsync("token-a", Parameters);
        clock.Advance(TimeSpan.FromSeconds(9));
        await cache.ValidateTokenAsync("token-a", Parameters);
        Assert.Equal(1, inner.Calls);

        clock.Advance(TimeSpan.FromSeconds(2));
        inner.Valid = false; // the validator now says expired
        var late = await cache.ValidateTokenAsync("token-a", Parameters);
        Assert.False(late.IsValid);
        Assert.Equal(2, inner.Calls);
    }

    [Fact]
    public async Task InvalidTokens_AreNotKept_AndTheCacheIsBounded()
    {
        var clock = new FakeTimeProvider();
        var inner = new CountingHandler(clock, validFor: TimeSpan.FromHours(1)) { Valid = false };
        var cache = new ValidatedTokenCache(inner, capacity: 2, clock);

        await cache.ValidateTokenAsync("bad", Parameters);
        await cache.ValidateTokenAsync("bad", Parameters);
        Assert.Equal(2, inner.Calls);
        Assert.Equal(0, cache.Count);

        inner.Valid = true;
        foreach (var token in new[] { "a", "b", "c", "c" })
        {
            await cache.ValidateTokenAsync(token, Parameters);
        }

        Assert.Equal(2, cache.Count);
        Assert.Equal(2 + 4, inner.Calls); // c was not kept: full

        clock.Advance(ValidatedTokenCache.MaxAge + TimeSpan.FromSeconds(1));
        await cache.ValidateTokenAsync("c", Parameters); // full of expired entries: swept, c kept
        await cache.ValidateTokenAsync("c", Parameters);
        Assert.Equal(2 + 5, inner.Calls);
        Assert.Equal(1, cache.Count);
    }

    private sealed class CountingHandler(TimeProvider clock, TimeSpan validFor) : TokenHandler
    {
        public int Calls { get; private set; }

        public bool Valid { get; set; } = true;

        public override Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
        {
            Calls++;
            return Task.FromResult(Valid
                ? new TokenValidationResult { IsValid = true, SecurityToken = new FakeToken(clock.GetUtcNow().UtcDateTime + validFor) }
                : new TokenValidationResult { IsValid = false, Exception = new SecurityTokenExpiredException("expired") });
        }
    }

    private sealed class FakeToken(DateTime validTo) : SecurityToken
    {
        public override string Id => "id";

        public override string Issuer => "issuer";

        public override SecurityKey SecurityKey => null!;

        public override SecurityKey SigningKey { get; set; } = null!;

        public override DateTime ValidFrom => DateTime.MinValue;

        public override DateTime ValidTo => validTo;

        public override string UnsafeToString() => "fake";
    }
}
