namespace YarpGateway.Configuration;

/// <summary>
/// Of a reloadable section's keys (relative to it), those a reload applies, for a section that a reload applies only in
/// part (the rest is read at start-up, and <see cref="StartupOnlySections"/> reports an edit of it). A reload logs and
/// counts only a change of these.
/// </summary>
/// <param name="keys">Every key with a value in the section now.</param>
/// <param name="applied">What the last applied reload (or start-up) took; null at start-up.</param>
internal delegate IReadOnlyDictionary<string, string> AppliedKeys(IReadOnlyDictionary<string, string> keys, IReadOnlyDictionary<string, string>? applied);
