using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Primitives;

namespace YarpGateway.Endpoints;

/// <summary>
/// Serves a renewed TLS certificate without a restart. Kestrel reads an endpoint's certificate files once (the
/// gateway turns its configuration reload off, since that rebinds ports), so a certificate renewed on disk
/// (cert-manager rewriting a Secret, mounted by a symlink swap) was never served, and every client failed once the
/// old one expired. Every <see cref="CheckInterval"/> the files of each HTTPS endpoint are read again; when their
/// bytes changed and they load (certificate, private key, chain), new handshakes get the new certificate through
/// Kestrel's <c>OnAuthenticate</c>; open connections keep theirs. Files that changed but do not load (written
/// halfway, a key that does not match), or that hold a certificate not valid now while the current one is (a Secret
/// rolled back), leave the current certificate serving, logged once per change. A read that does not load is read
/// again after <see cref="SettleDelay"/> before it is called a failure: <c>cp</c> and most editors truncate a file and
/// then write it, and a check that lands in between, or between a certificate's copy and its key's, reads files that
/// are still being written. The certificate each endpoint starts
/// with is logged, as a warning when it is not valid now. Certificates from a store, or chosen by SNI, are not watched.
/// </summary>
internal sealed partial class CertificateReloader(TimeProvider timeProvider, ILogger<CertificateReloader> logger) : IDisposable
{
    private readonly List<WatchedCertificate> _watched = [];
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private int _checking;
    private CancellationTokenSource _filesChanged = new();
    private bool _disposed;

    /// <summary>How often the files are read again. Default 10 s.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long files that changed and do not load are given to settle before they are read again and, if unchanged, called a failure. Default 1 s.</summary>
    public TimeSpan SettleDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Reads in a row that find the files changed again and still not loading before the last is called a failure all the same.</summary>
    internal const int MaxUnsettledReads = 5;

    /// <summary>
    /// Fires when a read found an endpoint's files changed and came to a verdict on them (reloaded, or refused): what a
    /// restart would load from them may have changed too (<see cref="Configuration.RestartCheck"/>).
    /// </summary>
    public IChangeToken GetFilesChangedToken() => new CancellationChangeToken(Volatile.Read(ref _filesChanged).Token);

    /// <summary>Each HTTPS endpoint's current certificate: what <c>gateway.tls.certificate.expiry</c> reports.</summary>
    public IReadOnlyList<(string Endpoint, X509Certificate2 Certificate)> Current()
    {
        lock (_gate)
        {
            return [.. _watched.Select(w => (w.Endpoint, w.Certificate))];
        }
    }

    /// <summary>
    /// Called from the endpoint's configuration callback, once Kestrel has loaded its certificate into
    /// <paramref name="https"/>; <paramref name="certificate"/> is the section it came from (the endpoint's
    /// <c>Certificate</c>, else <c>Kestrel:Certificates:Default</c>).
    /// </summary>
    public void Watch(string endpoint, HttpsConnectionAdapterOptions https, IConfigurationSection certificate)
    {
        if (https.ServerCertificate is not { } served)
        {
            return; // a selector of someone else's
        }

        var files = CertificateFiles.From(certificate); // null: from a certificate store, reported, not reloaded
        var watched = new WatchedCertificate(endpoint, files, served);
        var source = files?.Path ?? "a certificate store";
        if (IsValidNow(served))
        {
            Log.Served(logger, endpoint, served.Subject, served.NotBefore.ToUniversalTime(), served.NotAfter.ToUniversalTime(), served.Thumbprint, source);
        }
        else
        {
            // Kestrel serves it all the same, and every client that checks certificates refuses every handshake.
            Log.ServedNotValid(logger, endpoint, served.Subject, served.NotBefore.ToUniversalTime(), served.NotAfter.ToUniversalTime(), served.Thumbprint, source);
        }

        if (files is not null)
        {
            watched.LastBytes = files.Read();
            var previous = https.OnAuthenticate;
            https.OnAuthenticate = (connection, ssl) =>
            {
                previous?.Invoke(connection, ssl);
                if (watched.Context is { } context)
                {
                    ssl.ServerCertificate = null;
                    ssl.ServerCertificateContext = context;
                }
            };
        }

        lock (_gate)
        {
            _watched.Add(watched);
            if (files is not null)
            {
                _timer ??= timeProvider.CreateTimer(static state => ((CertificateReloader)state!).Check(), this, CheckInterval, CheckInterval);
            }
        }
    }

    /// <summary>Reads every watched endpoint's files, and takes on the ones that changed and load.</summary>
    internal void Check()
    {
        if (Interlocked.Exchange(ref _checking, 1) == 1)
        {
            return;
        }

        try
        {
            WatchedCertificate[] watched;
            lock (_gate)
            {
                watched = [.. _watched];
            }

            var unsettled = false;
            var changed = false;
            foreach (var w in watched)
            {
                if (w.Files is { } files)
                {
                    var verdict = CheckOne(w, files);
                    unsettled |= verdict is null;
                    changed |= verdict == true;
                }
            }

            if (changed && !Volatile.Read(ref _disposed))
            {
                using var before = Interlocked.Exchange(ref _filesChanged, new CancellationTokenSource());
                try
                {
                    before.Cancel(); // its listeners run here, and take the new token
                }
                catch (ObjectDisposedException)
                {
                    // Disposed with the reloader while this check ran (the host stopping does not wait for a timer's
                    // callback): nobody listens any more. Thrown on the timer's thread, it ended the process.
                }
            }

            if (unsettled)
            {
                _timer?.Change(SettleDelay, CheckInterval);
            }
        }
        finally
        {
            Volatile.Write(ref _checking, 0);
        }
    }

    /// <summary>
    /// Null when the files changed, do not load, and were not read so before: they are read again after
    /// <see cref="SettleDelay"/>. True when they changed and were reloaded or refused; false when they had not changed.
    /// </summary>
    private bool? CheckOne(WatchedCertificate watched, CertificateFiles files)
    {
        byte[] bytes;
        try
        {
            bytes = files.Read();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            bytes = [];
        }

        if (bytes.AsSpan().SequenceEqual(watched.LastBytes))
        {
            watched.Settle();
            return false;
        }

        var old = watched.Certificate;
        try
        {
            var (leaf, chain) = files.Load(); // with its private key, or it throws
            if (!IsValidNow(leaf) && IsValidNow(old))
            {
                // A Secret rolled back, or the wrong one mounted: serving it would fail every handshake that checks it.
                throw new InvalidOperationException($"{leaf.Subject} (thumbprint {leaf.Thumbprint}) is not valid now: valid from {leaf.NotBefore.ToUniversalTime():u} until {leaf.NotAfter.ToUniversalTime():u}");
            }

            var context = SslStreamCertificateContext.Create(leaf, chain, offline: true);
            watched.LastBytes = bytes;
            watched.Settle();
            lock (_gate)
            {
                watched.Certificate = leaf;
                watched.Context = context;
            }

            Log.Reloaded(logger, watched.Endpoint, files.Path, leaf.Subject, leaf.NotAfter.ToUniversalTime(), leaf.Thumbprint, old.Subject, old.NotAfter.ToUniversalTime());
            return true;
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            if ((watched.Unsettled is not { } before || !bytes.AsSpan().SequenceEqual(before)) && watched.UnsettledReads < MaxUnsettledReads)
            {
                // Perhaps still being written: the verdict waits for a read that finds them unchanged (or for files
                // that have changed at every read MaxUnsettledReads times, which would otherwise never get one).
                watched.Unsettled = bytes;
                watched.UnsettledReads++;
                return null;
            }

            watched.LastBytes = bytes;
            watched.Settle();
            Log.ReloadFailed(logger, watched.Endpoint, files.Path, Telemetry.ExceptionText.Describe(ex), old.Subject, old.NotAfter.ToUniversalTime());
            return true;
        }
    }

    private bool IsValidNow(X509Certificate2 certificate)
    {
        var now = timeProvider.GetUtcNow().UtcDateTime;
        return certificate.NotBefore.ToUniversalTime() <= now && now <= certificate.NotAfter.ToUniversalTime();
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, true);
        _timer?.Dispose();
        _filesChanged.Dispose();
    }

    private sealed class WatchedCertificate(string endpoint, CertificateFiles? files, X509Certificate2 certificate)
    {
        public string Endpoint { get; } = endpoint;

        public CertificateFiles? Files { get; } = files;

        public X509Certificate2 Certificate { get; set; } = certificate;

        /// <summary>Null until the files change: until then Kestrel serves what it loaded.</summary>
        public SslStreamCertificateContext? Context { get; set; }

        public byte[] LastBytes { get; set; } = [];

        /// <summary>Files read once that changed and did not load, not yet called a failure; null otherwise.</summary>
        public byte[]? Unsettled { get; set; }

        /// <summary>Reads in a row that found the files so.</summary>
        public int UnsettledReads { get; set; }

        /// <summary>The files were given a verdict, or are as they were.</summary>
        public void Settle()
        {
            Unsettled = null;
            UnsettledReads = 0;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "TLS certificate of the {Endpoint} endpoint reloaded from {Path}: {Subject}, valid until {NotAfter:u}, thumbprint {Thumbprint}; new connections get it (it replaces {OldSubject}, valid until {OldNotAfter:u}).", EventName = "CertificateReloaded")]
        public static partial void Reloaded(ILogger logger, string endpoint, string path, string subject, DateTime notAfter, string thumbprint, string oldSubject, DateTime oldNotAfter);

        [LoggerMessage(2, LogLevel.Warning, "TLS certificate files of the {Endpoint} endpoint ({Path}) changed but do not load: {Reason}. It keeps serving {OldSubject}, valid until {OldNotAfter:u}; the files are tried again when they change.", EventName = "CertificateReloadFailed")]
        public static partial void ReloadFailed(ILogger logger, string endpoint, string path, string reason, string oldSubject, DateTime oldNotAfter);

        [LoggerMessage(3, LogLevel.Information, "TLS certificate of the {Endpoint} endpoint: {Subject}, valid from {NotBefore:u} until {NotAfter:u}, thumbprint {Thumbprint}, from {Source}.", EventName = "CertificateServed")]
        public static partial void Served(ILogger logger, string endpoint, string subject, DateTime notBefore, DateTime notAfter, string thumbprint, string source);

        [LoggerMessage(4, LogLevel.Warning, "TLS certificate of the {Endpoint} endpoint is not valid now: {Subject}, valid from {NotBefore:u} until {NotAfter:u}, thumbprint {Thumbprint}, from {Source}. It is served, and every client that checks certificates refuses the handshake; renew it (its files are read again every 10 s).", EventName = "CertificateNotValid")]
        public static partial void ServedNotValid(ILogger logger, string endpoint, string subject, DateTime notBefore, DateTime notAfter, string thumbprint, string source);
    }
}
