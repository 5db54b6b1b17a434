using Microsoft.AspNetCore.DataProtection;

namespace YarpGateway.SessionAffinity;

/// <summary>
/// Data Protection that makes its key ring when something is first protected or unprotected, not
/// when a protector is created. YARP's encrypted affinity policies (<c>Cookie</c>, <c>CustomHeader</c>)
/// create their protectors when they are built, at start-up, whether or not a cluster uses them.
/// </summary>
internal sealed class LazyDataProtectionProvider(Func<IDataProtectionProvider> create) : IDataProtectionProvider
{
    private readonly Lazy<IDataProtectionProvider> _inner = new(create);

    public IDataProtector CreateProtector(string purpose) => new LazyDataProtector(() => _inner.Value.CreateProtector(purpose));

    private sealed class LazyDataProtector(Func<IDataProtector> create) : IDataProtector
    {
        private readonly Lazy<IDataProtector> _inner = new(create);

        public IDataProtector CreateProtector(string purpose) => new LazyDataProtector(() => _inner.Value.CreateProtector(purpose));

        public byte[] Protect(byte[] plaintext) => _inner.Value.Protect(plaintext);

        public byte[] Unprotect(byte[] protectedData) => _inner.Value.Unprotect(protectedData);
    }
}
