using System.Collections.Concurrent;
using Microsoft.IdentityModel.Tokens;

namespace YarpGateway.Security;

/// <summary>
/// Remembers tokens that validated, so that a client sending the same bearer token on every request
/// (what clients do) is not decoded, parsed and its signature checked each time: that cost 17.7 µs
/// of CPU per request on one core (bench/results/policies.md). A hit is the exact same token string,
/// within its own lifetime and at most <see cref="MaxAge"/> after it was validated (so a signing key
/// removed from the configuration or the issuer's key set stops being honoured within a minute).
/// Only valid results are kept; at most <c>capacity</c> tokens, each at most
/// <see cref="MaxTokenLength"/> characters; when full, expired entries are swept and new tokens are
/// validated without being kept. One cache per scheme (the handler is the scheme's own), as Envoy's
/// jwt_authn keeps one per provider.
/// </summary>
internal sealed class ValidatedTokenCache(TokenHandler inner, int capacity, TimeProvider timeProvider) : TokenHandler
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(1);
    public const int MaxTokenLength = 4096;

    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private int _count;
    private long _lastSweep;

    internal int Count => Volatile.Read(ref _count);

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        var now = timeProvider.GetUtcNow();
        if (_entries.TryGetValue(token, out var entry))
        {
            if (now < entry.Until)
            {
                return entry.Result;
            }

            Remove(token);
        }

        var result = await inner.ValidateTokenAsync(token, validationParameters).ConfigureAwait(false);
        if (result.IsValid && token.Length <= MaxTokenLength)
        {
            var validTo = result.SecurityToken?.ValidTo ?? DateTime.MinValue;
            var until = now + MaxAge;
            if (validTo != DateTime.MinValue && new DateTimeOffset(DateTime.SpecifyKind(validTo, DateTimeKind.Utc)) < until)
            {
                until = new DateTimeOffset(DateTime.SpecifyKind(validTo, DateTimeKind.Utc));
            }

            if (until > now && (Volatile.Read(ref _count) < capacity || Sweep(now)))
            {
                // The identity and its claims are built lazily; build them here, on one thread, before
                // concurrent requests share the result (they only read it).
                _ = result.ClaimsIdentity?.Claims.Count();
                if (_entries.TryAdd(token, new Entry(result, until)))
                {
                    Interlocked.Increment(ref _count);
                }
            }
        }

        return result;
    }

    public override Task<TokenValidationResult> ValidateTokenAsync(SecurityToken token, TokenValidationParameters validationParameters)
        => inner.ValidateTokenAsync(token, validationParameters);

    public override SecurityToken ReadToken(string token) => inner.ReadToken(token);

    private void Remove(string token)
    {
        if (_entries.TryRemove(token, out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    // Full: drops expired entries, at most once a second. Whether there is room now.
    private bool Sweep(DateTimeOffset now)
    {
        var last = Volatile.Read(ref _lastSweep);
        if (now.UtcTicks - last < TimeSpan.TicksPerSecond || Interlocked.CompareExchange(ref _lastSweep, now.UtcTicks, last) != last)
        {
            return false;
        }

        foreach (var (token, entry) in _entries)
        {
            if (entry.Until <= now)
            {
                Remove(token);
            }
        }

        return Volatile.Read(ref _count) < capacity;
    }

    private sealed record Entry(TokenValidationResult Result, DateTimeOffset Until);
}
