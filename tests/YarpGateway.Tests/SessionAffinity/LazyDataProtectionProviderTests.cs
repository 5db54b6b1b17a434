using Microsoft.AspNetCore.DataProtection;
using YarpGateway.SessionAffinity;

namespace YarpGateway.Tests.SessionAffinity;

public class LazyDataProtectionProviderTests
{
    [Fact]
    public void TheKeyRing_IsMadeOnFirstProtect_NotWhenProtectorsAreCreated()
    {
        var made = 0;
        var provider = new LazyDataProtectionProvider(() =>
        {
            made++;
            return new EphemeralDataProtectionProvider();
        });

        var protector = provider.CreateProtector("affinity").CreateProtector("cookie");
        Assert.Equal(0, made);

        var secret = protector.Protect("destination-a");
        Assert.Equal(1, made);
        Assert.Equal("destination-a", protector.Unprotect(secret));
        Assert.Equal("destination-a", provider.CreateProtector("affinity").CreateProtector("cookie").Unprotect(secret)); // same purposes, same key ring
        Assert.Equal(1, made);
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => provider.CreateProtector("other").Unprotect(secret));
    }
}
