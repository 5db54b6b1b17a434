namespace YarpGateway.Configuration;

/// <summary>What RFC 9110 allows in a header's name and value, for checking configured ones before they are sent.</summary>
internal static class HttpSyntax
{
    private static readonly System.Buffers.SearchValues<char> TokenChars =
        System.Buffers.SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    /// <summary>What a token may hold, for errors: "letters, digits and !#$%&amp;'*+-.^_`|~ only".</summary>
    public const string TokenCharacters = "letters, digits and !#$%&'*+-.^_`|~ only";

    /// <summary>A token (RFC 9110 §5.6.2): a header name or a method. Not empty.</summary>
    public static bool IsToken(string? text) => !string.IsNullOrEmpty(text) && !text.AsSpan().ContainsAnyExcept(TokenChars);

    /// <summary>The first character a header value cannot carry (a control character other than a tab: a line break would end the header), or null.</summary>
    public static char? FirstControlCharacter(string text)
    {
        foreach (var c in text)
        {
            if ((c < ' ' && c != '\t') || c == '\x7F')
            {
                return c;
            }
        }

        return null;
    }

    /// <summary>How a character is named in an error: <c>U+000D</c>.</summary>
    public static string Describe(char c) => $"U+{(int)c:X4}";
}
