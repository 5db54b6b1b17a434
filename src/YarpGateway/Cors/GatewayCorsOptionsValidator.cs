using YarpGateway.Configuration;
using Microsoft.Extensions.Options;

namespace YarpGateway.Cors;

/// <summary>Lists every bad policy under <c>Gateway:Cors</c> at once.</summary>
internal sealed class GatewayCorsOptionsValidator : IValidateOptions<GatewayCorsOptions>
{
    private const string Prefix = GatewayCorsOptions.SectionName + ":Policies:";

    public ValidateOptionsResult Validate(string? name, GatewayCorsOptions options)
    {
        var errors = new List<string>();
        foreach (var (policy, settings) in options.Policies)
        {
            var key = Prefix + policy;
            if (RoutePolicyNames.Is(policy, RoutePolicyNames.Disable))
            {
                errors.Add($"{key}: 'Disable' is reserved (a route's \"CorsPolicy\": \"Disable\" turns CORS off); give the policy another name.");
            }

            if (settings is null || settings.Origins.Count == 0)
            {
                errors.Add($"{key}:Origins lists no origin; list the origins allowed (https://app.example.com), or \"*\".");
                continue;
            }

            foreach (var origin in settings.Origins)
            {
                if (origin == "*")
                {
                    if (settings.Credentials)
                    {
                        errors.Add($"{key}:Origins: \"*\" with Credentials true is not allowed by the CORS protocol; list the origins.");
                    }
                }
                else if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.PathAndQuery != "/" || origin.EndsWith('/') || uri.UserInfo.Length > 0)
                {
                    errors.Add($"{key}:Origins: '{origin}' is not an origin; write scheme://host[:port], with no path or trailing slash.");
                }
            }

            Tokens(errors, key + ":Methods", settings.Methods);
            Tokens(errors, key + ":Headers", settings.Headers);
            Tokens(errors, key + ":ExposedHeaders", settings.ExposedHeaders);
            if (settings.MaxAge is { } maxAge && maxAge < TimeSpan.Zero)
            {
                errors.Add($"{key}:MaxAge must not be negative; got {maxAge}.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void Tokens(List<string> errors, string key, List<string> values)
    {
        foreach (var value in values)
        {
            // A method or header name is a token: one with a character outside it is never in a request, so it would
            // never be allowed (a list written as one entry, "GET, POST", included).
            if (value != "*" && !HttpSyntax.IsToken(value))
            {
                errors.Add($"{key}: '{value}' is not a method or header name: {HttpSyntax.TokenCharacters} (list each as its own entry).");
            }
        }
    }
}
