using System.Reflection;
using System.Text.RegularExpressions;
using YarpGateway.Tests.Deploy;

namespace YarpGateway.Tests.Docs;

/// <summary>The documentation stays true: links resolve, every option and log event is documented, the README stays short.</summary>
public partial class DocumentationTests
{
    private static readonly string[] Documents =
    [
        "README.md", "deploy/README.md",
        "docs/configuration.md", "docs/operations.md", "docs/websockets.md", "docs/benchmarks.md",
        "docs/performance-history.md", "docs/architecture.md",
    ];

    [GeneratedRegex(@"\[[^\]]+\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"^#{1,6} (.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    /// <summary>GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens; repeats get -1, -2, ...</summary>
    internal static HashSet<string> Anchors(string markdown)
    {
        var anchors = new HashSet<string>(StringComparer.Ordinal);
        var text = Regex.Replace(markdown, "```.*?```", string.Empty, RegexOptions.Singleline);
        foreach (Match heading in Heading().Matches(text))
        {
            var slug = Regex.Replace(heading.Groups[1].Value.Trim().ToLowerInvariant().Replace("`", string.Empty, StringComparison.Ordinal), @"[^\w\- ]", string.Empty).Replace(' ', '-');
            var candidate = slug;
            for (var n = 1; !anchors.Add(candidate); n++)
            {
                candidate = $"{slug}-{n}";
            }
        }

        return anchors;
    }

    [Fact]
    public void EveryRelativeLink_Resolves_ToAFileAndHeadingThatExist()
    {
        var broken = new List<string>();
        foreach (var document in Documents)
        {
            var text = File.ReadAllText(RepositoryFiles.PathOf(document));
            var folder = Path.GetDirectoryName(document)!;
            foreach (Match link in Link().Matches(Regex.Replace(text, "```.*?```", string.Empty, RegexOptions.Singleline)))
            {
                var target = link.Groups[1].Value;
                if (Regex.IsMatch(target, "^[a-z]+:", RegexOptions.IgnoreCase))
                {
                    continue; // an absolute URL
                }

                var (file, anchor) = target.Split('#', 2) is [var f, var a] ? (f, a) : (target, null);
                var path = file.Length == 0 ? document : Path.Combine(folder, file);
                var full = Path.GetFullPath(RepositoryFiles.PathOf(path));
                if (!File.Exists(full) && !Directory.Exists(full))
                {
                    broken.Add($"{document}: {target} (no {path})");
                }
                else if (anchor is not null && File.Exists(full) && !Anchors(File.ReadAllText(full)).Contains(anchor))
                {
                    broken.Add($"{document}: {target} (no heading '{anchor}' in {path})");
                }
            }
        }

        Assert.True(broken.Count == 0, "broken links:\n" + string.Join("\n", broken));
    }

    [Fact]
    public void EveryGatewayOption_IsInTheConfigurationReference()
    {
        var reference = File.ReadAllText(RepositoryFiles.PathOf("docs/configuration.md"));
        var missing = OptionKeys().Where(key => !reference.Contains($"`{key}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "not in docs/configuration.md: " + string.Join(", ", missing));
    }

    /// <summary>Every configuration key of the gateway's options classes (those with a <c>SectionName</c> under <c>Gateway:</c>), nested sections expanded.</summary>
    internal static IEnumerable<string> OptionKeys()
    {
        foreach (var type in typeof(YarpGateway.Configuration.ConfigError).Assembly.GetTypes())
        {
            if (type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) is string section && section.StartsWith("Gateway:", StringComparison.Ordinal))
            {
                foreach (var key in Keys(type, section))
                {
                    yield return key;
                }
            }
        }
    }

    private static IEnumerable<string> Keys(Type type, string prefix)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
        {
            var key = $"{prefix}:{property.Name}";
            var propertyType = property.PropertyType;
            if (propertyType.IsClass && propertyType != typeof(string) && !propertyType.IsArray && propertyType.Namespace?.StartsWith("YarpGateway", StringComparison.Ordinal) == true)
            {
                foreach (var nested in Keys(propertyType, key))
                {
                    yield return nested;
                }
            }
            else
            {
                yield return key;
            }
        }
    }

    [Fact]
    public void EveryLogEvent_IsInTheOperationsGuide()
    {
        var guide = File.ReadAllText(RepositoryFiles.PathOf("docs/operations.md"));
        var events = Directory.GetFiles(RepositoryFiles.PathOf("src/YarpGateway"), "*.cs", SearchOption.AllDirectories)
            .SelectMany(file => Regex.Matches(File.ReadAllText(file), @"\[LoggerMessage\(.*EventName = ""(\w+)""\)\]").Select(m => m.Groups[1].Value))
            .ToList();
        Assert.NotEmpty(events);
        var missing = events.Where(name => !guide.Contains($"`{name}`", StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "log events not in docs/operations.md: " + string.Join(", ", missing));
    }

    [Fact]
    public void TheReadme_IsShort_AndItsQuickStartIsTheTwoCommands()
    {
        var readme = File.ReadAllLines(RepositoryFiles.PathOf("README.md"));
        Assert.True(readme.Length <= 300, $"README.md has {readme.Length} lines; the reference belongs in docs/");
        var text = string.Join("\n", readme);
        Assert.Contains("## Quick start\n\n```sh\ndotnet run --project src/YarpGateway\ndotnet test\n```", text, StringComparison.Ordinal);
    }
}
