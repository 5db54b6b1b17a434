using System.Collections;
using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Microsoft.Extensions.Options;

namespace YarpGateway.Configuration;

/// <summary>
/// Every value of a <c>Gateway:*</c> section that does not convert to its option's type, and the
/// section's validation errors besides. The configuration binder stops at the first value it cannot
/// convert, which would hide the other bad values and every validation error of that section.
/// </summary>
internal static class OptionsBindingErrors
{
    /// <summary>
    /// One error per value that does not convert, keyed by its full path; then the validators'
    /// errors for the section bound without those values. Empty when every value converts.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = KeptForReflection.Justification)]
    public static List<ConfigError> Find<TOptions>(IConfigurationSection section, IEnumerable<IValidateOptions<TOptions>> validators)
        where TOptions : class, new()
    {
        var convertible = new List<KeyValuePair<string, string?>>();
        var errors = Unconvertible(typeof(TOptions), section, convertible);
        if (errors.Count == 0)
        {
            return errors;
        }

        TOptions rest;
        try
        {
            rest = new ConfigurationBuilder().AddInMemoryCollection(convertible).Build().Get<TOptions>() ?? new TOptions();
        }
        catch (InvalidOperationException)
        {
            return errors; // something this walk does not model; the conversion errors still stand
        }

        // Not a validator's word on a value already reported: it saw the default in its place ("PermitLimit: 'x' is not a
        // whole number" needs no "PermitLimit must be at least 1; got 0" after it).
        var unconverted = errors.Select(error => error.Key).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var validator in validators)
        {
            if (validator.Validate(Options.DefaultName, rest) is { Failed: true, Failures: { } failures })
            {
                errors.AddRange(failures.Select(failure => ConfigError.FromFailure(section.Path, failure)).Where(error => !unconverted.Contains(error.Key)));
            }
        }

        return errors;
    }

    /// <summary>
    /// One error per value under <paramref name="section"/> that does not convert to what it binds to in
    /// <paramref name="root"/>, and for the section's own value when it is one (a scalar read as <paramref name="root"/>);
    /// the values that do convert are added to <paramref name="convertible"/>, by their relative keys, when it is given.
    /// </summary>
    internal static List<ConfigError> Unconvertible(Type root, IConfigurationSection section, List<KeyValuePair<string, string?>>? convertible = null)
    {
        var errors = new List<ConfigError>();
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true).Prepend(new(string.Empty, section.Value))) // relative paths leave the section's own value out
        {
            if (value is null)
            {
                continue; // a section, not a value
            }

            if (ValueType(root, key.Length == 0 ? [] : key.Split(ConfigurationPath.KeyDelimiter)) is { } type && !Converts(type, value))
            {
                errors.Add(new ConfigError(key.Length == 0 ? section.Path : ConfigurationPath.Combine(section.Path, key), Refusal(type, value)));
            }
            else if (key.Length > 0)
            {
                convertible?.Add(new(key, value));
            }
        }

        return errors;
    }

    /// <summary>"'x' is not a whole number.", or for a time written as a number alone, what it would have meant.</summary>
    private static string Refusal(Type type, string value)
        => IsTime(type) ? TimeSpans.Refusal(value, ExpectedValue.Describe(type)) : $"'{value}' is not {ExpectedValue.Describe(type)}.";

    private static bool IsTime(Type type) => (Nullable.GetUnderlyingType(type) ?? type) == typeof(TimeSpan);

    /// <summary>The type a key's value binds to, or null when the binder ignores the key or it is not a plain value.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("Trimming", "IL2067", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("Trimming", "IL2072", Justification = KeptForReflection.Justification)]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = KeptForReflection.Justification)]
    internal static Type? ValueType(Type root, IEnumerable<string> path)
    {
        var type = root;
        foreach (var segment in path)
        {
            type = Nullable.GetUnderlyingType(type) ?? type;
            if (ItemType(type) is { } item)
            {
                type = item;
            }
            else if (type.GetProperty(segment, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase) is { } property
                && (property.CanWrite || (!property.PropertyType.IsValueType && property.PropertyType != typeof(string)))) // get-only objects are bound in place
            {
                type = property.PropertyType;
            }
            else
            {
                return null;
            }
        }

        return type != typeof(string) && TypeDescriptor.GetConverter(type).CanConvertFrom(typeof(string)) ? type : null;
    }

    /// <summary>What a key below a collection binds to: an array's or a list's item, a dictionary's value; null for anything else.</summary>
    internal static Type? ItemType(Type type)
    {
        if (type.IsArray)
        {
            return type.GetElementType();
        }

        return type.IsGenericType && typeof(IEnumerable).IsAssignableFrom(type) && type.GetGenericArguments() is { Length: 1 or 2 } arguments
            ? arguments[^1]
            : null;
    }

    /// <summary>
    /// Whether the binder converts <paramref name="value"/> to <paramref name="type"/>, and, for an enum, to one of its
    /// values: the binder takes any number for an enum (a cluster's <c>VersionPolicy</c> of <c>-1</c> or <c>7</c> passed,
    /// and every request to the cluster got 502). Nor a time span written as a number of days alone (<see cref="TimeSpans.IsDaysAlone(string?)"/>).
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = KeptForReflection.Justification)]
    internal static bool Converts(Type type, string value)
    {
        if (IsTime(type) && TimeSpans.IsDaysAlone(value))
        {
            return false; // "30" converts, to 30 days: TimeSpans.Refusal says what was likely meant
        }

        try
        {
            // The binder's own conversion, so that what is reported here is exactly what fails there.
            var converted = new ConfigurationBuilder().AddInMemoryCollection([new("v", value)]).Build().GetValue(type, "v");
            return converted is not Enum member || IsMember(member);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>A named value, or for a <c>[Flags]</c> enum a combination of named bits.</summary>
    private static bool IsMember(Enum value)
    {
        var type = value.GetType();
        if (Enum.IsDefined(type, value))
        {
            return true;
        }

        if (!type.IsDefined(typeof(FlagsAttribute), inherit: false))
        {
            return false;
        }

        var named = Enum.GetValuesAsUnderlyingType(type).Cast<object>().Aggregate(0UL, (bits, flag) => bits | Bits(flag));
        return (Bits(value) & ~named) == 0;

        // As unsigned bits whatever the underlying type (a negative value of a signed one, or past long's range of a ulong one).
        static ulong Bits(object value) => Type.GetTypeCode(value.GetType()) is TypeCode.UInt64 // an enum's code is its underlying type's
            ? Convert.ToUInt64(value, System.Globalization.CultureInfo.InvariantCulture)
            : unchecked((ulong)Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
    }
}
