namespace YarpGateway.Tests.Deploy;

/// <summary>Finds files of the repository (the folder holding YarpGateway.sln) from the test's output folder.</summary>
internal static class RepositoryFiles
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "YarpGateway.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("No YarpGateway.sln above " + AppContext.BaseDirectory);
    }
}
