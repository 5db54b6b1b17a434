using System.Diagnostics.CodeAnalysis;

namespace YarpGateway.Configuration;

/// <summary>
/// Why the configuration checks may read option types by reflection in a native AOT build (<c>bench/aot.sh</c>), where
/// the trimmer keeps of a type only what it sees used. <see cref="OptionsBindingErrors"/>, <see cref="UnknownSettings"/>
/// and <see cref="TimeSpanRangeValidator{TOptions}"/> walk an options type's properties, their types' properties in turn,
/// and bind them with the configuration binder's reflection path, which no annotation can describe. What they walk is
/// kept instead: the gateway's and YARP's assemblies whole (<c>TrimmerRootAssembly</c> in <c>YarpGateway.csproj</c>) and
/// the platform's option types by <c>[DynamicDependency]</c>: Kestrel's limits by <see cref="KestrelLimits"/>, the console
/// logger's options on <c>LoggingSettings.Find</c>, which names them, and the collection interfaces the binder calls by
/// <see cref="Collections"/>. The
/// suppressions that cite <see cref="Justification"/> rest on that, and <c>tests/aot/check.sh</c> (run by CI) proves it:
/// both builds must give the same answer to <c>--check</c> for a bad value of every key it lists.
/// </summary>
internal static class KeptForReflection
{
    /// <summary>What a <c>[DynamicDependency]</c> keeps of a platform type the checks walk and the binder fills.</summary>
    public const DynamicallyAccessedMemberTypes Members = DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicParameterlessConstructor;

    public const string Justification = "The option types walked are kept whole in a trimmed build: the gateway's and YARP's assemblies are trimmer roots, the platform's are [DynamicDependency] where they are named (KeptForReflection).";

    /// <summary>
    /// The collections the binder fills by reflection through their interfaces (<c>IDictionary&lt;,&gt;.TryGetValue</c> and
    /// its indexer, <c>ICollection&lt;&gt;.Add</c>): in a trimmed build without these, every <c>Policies</c> map bound empty
    /// without a word (the binder swallows what it cannot call) and a route naming a policy was refused. A map or a list of
    /// a new type in an options class needs its interface here. Nothing calls this method: it is kept, with what it names,
    /// because this assembly is a trimmer root.
    /// </summary>
    [DynamicDependency(CollectionMembers, typeof(IDictionary<string, Cors.CorsPolicySettings>))]
    [DynamicDependency(CollectionMembers, typeof(IDictionary<string, OutputCaching.OutputCachePolicySettings>))]
    [DynamicDependency(CollectionMembers, typeof(IDictionary<string, RateLimiting.RateLimitPolicySettings>))]
    [DynamicDependency(CollectionMembers, typeof(IDictionary<string, Security.AuthorizationPolicySettings>))]
    [DynamicDependency(CollectionMembers, typeof(IDictionary<string, List<string>>))]
    [DynamicDependency(CollectionMembers, typeof(ICollection<string>))]
    internal static void Collections()
    {
    }

    /// <summary>
    /// Kestrel's limit types, which <see cref="UnknownSettings.Find"/> walks for unknown keys under <c>Kestrel:Limits</c> and
    /// <c>GatewayKestrelSetup.LimitsErrors</c> binds to find values that do not convert. Kept, like <see cref="Collections"/>,
    /// because this assembly is a trimmer root; nothing calls it.
    /// </summary>
    [DynamicDependency(Members, typeof(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits))]
    [DynamicDependency(Members, typeof(Microsoft.AspNetCore.Server.Kestrel.Core.Http2Limits))]
    [DynamicDependency(Members, typeof(Microsoft.AspNetCore.Server.Kestrel.Core.Http3Limits))]
    [DynamicDependency(Members, typeof(Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate))]
    internal static void KestrelLimits()
    {
    }

    private const DynamicallyAccessedMemberTypes CollectionMembers = DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.PublicProperties;
}
