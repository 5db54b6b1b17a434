using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace YarpGateway.Security;

/// <summary>
/// The bearer scheme's OpenID Connect configuration manager (<c>Authority</c>), as it is, remembering
/// whether the issuer's configuration (its issuer name and signing keys) could be had. When it cannot
/// (the identity provider down or unreachable when a pod starts), the token handler goes on without it
/// and every token fails as "issuer invalid": clients were told their token was bad (401) and the log
/// said <c>wrong_issuer</c>, nothing about the identity provider. With this, such a refusal is a
/// 503 (<see cref="BearerOptionsSetup"/>), counted and logged as <c>issuer_unavailable</c> with the
/// reason. Once a configuration has been had, the manager keeps serving it through the issuer's
/// later outages, and nothing changes.
/// </summary>
internal sealed class ObservedIssuerConfiguration(IConfigurationManager<OpenIdConnectConfiguration> inner) : BaseConfigurationManager, IConfigurationManager<OpenIdConnectConfiguration>
{
    private volatile Exception? _failure;

    /// <summary>Why the issuer's configuration could not be had on the last try; null once it was.</summary>
    public Exception? Failure => _failure;

    public override async Task<BaseConfiguration> GetBaseConfigurationAsync(CancellationToken cancel)
        => await GetConfigurationAsync(cancel).ConfigureAwait(false);

    public async Task<OpenIdConnectConfiguration> GetConfigurationAsync(CancellationToken cancel)
    {
        try
        {
            var configuration = await inner.GetConfigurationAsync(cancel).ConfigureAwait(false);
            _failure = null;
            return configuration;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _failure = ex;
            throw;
        }
    }

    public override void RequestRefresh() => inner.RequestRefresh();
}
