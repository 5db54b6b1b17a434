namespace YarpGateway.Admission;

/// <summary>Why a request or connection was not admitted (the <c>reason</c> tag on the rejection counters).</summary>
internal enum AdmissionRejection
{
    /// <summary>Every slot taken and the queue full (or no queue): rejected at once.</summary>
    QueueFull,

    /// <summary>Waited in the queue for the whole queue timeout.</summary>
    QueueTimeout,

    /// <summary>The client went away while waiting; nothing is sent.</summary>
    ClientGone,

    /// <summary>An upgrade over the upgrade rate.</summary>
    UpgradeRate,
}

internal static class AdmissionRejectionNames
{
    public static string ToTag(this AdmissionRejection reason) => reason switch
    {
        AdmissionRejection.QueueFull => "queue_full",
        AdmissionRejection.QueueTimeout => "queue_timeout",
        AdmissionRejection.ClientGone => "client_gone",
        AdmissionRejection.UpgradeRate => "upgrade_rate",
        _ => "unknown",
    };
}
