using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace YarpGateway.RequestFiltering;

/// <summary>
/// The decoding Kestrel is given for <c>Content-Length</c> values, so that its own parser refuses what
/// RFC 9110 §8.6 does not allow (<c>1*DIGIT</c>). Kestrel parses the header while reading the request
/// head and keeps only the number, reading <c>+5</c> as 5; nginx refuses it, and a proxy in front that
/// reads the bytes differently would disagree with us on where the body ends.
/// <para>
/// Kestrel hands the raw value's bytes to a custom decoding and parses the characters it gets back.
/// Here a value of 1 to 19 ASCII digits decodes to itself; any other value (a sign, a space, a
/// letter, an empty value, 20 digits or more) decodes to the single character <c>?</c>, which no
/// integer parse accepts, so Kestrel answers 400 ("Invalid content length") before any middleware
/// runs, on HTTP/1.1 and HTTP/2 alike. No allocation; every other header keeps Kestrel's default.
/// </para>
/// </summary>
internal sealed class ContentLengthDigitsEncoding : Encoding
{
    /// <summary>The longest value accepted: <c>long.MaxValue</c> has 19 digits.</summary>
    public const int MaxDigits = 19;

    private const char Refused = '?';

    public static ContentLengthDigitsEncoding Instance { get; } = new();

    private ContentLengthDigitsEncoding()
    {
    }

    public override string EncodingName => "Content-Length digits";

    private static bool IsPlainNumber(ReadOnlySpan<byte> bytes)
        => bytes.Length is > 0 and <= MaxDigits && !bytes.ContainsAnyExceptInRange((byte)'0', (byte)'9');

    public override int GetCharCount(ReadOnlySpan<byte> bytes) => IsPlainNumber(bytes) ? bytes.Length : 1;

    public override int GetCharCount(byte[] bytes, int index, int count) => GetCharCount(bytes.AsSpan(index, count));

    public override int GetChars(ReadOnlySpan<byte> bytes, Span<char> chars)
    {
        if (!IsPlainNumber(bytes))
        {
            if (chars.IsEmpty)
            {
                throw new ArgumentException("The output buffer is too small.", nameof(chars));
            }

            chars[0] = Refused;
            return 1;
        }

        if (chars.Length < bytes.Length)
        {
            throw new ArgumentException("The output buffer is too small.", nameof(chars));
        }

        for (var i = 0; i < bytes.Length; i++)
        {
            chars[i] = (char)bytes[i];
        }

        return bytes.Length;
    }

    public override int GetChars(byte[] bytes, int byteIndex, int byteCount, char[] chars, int charIndex)
        => GetChars(bytes.AsSpan(byteIndex, byteCount), chars.AsSpan(charIndex));

    public override int GetMaxCharCount(int byteCount) => Math.Max(byteCount, 1);

    // Kestrel never encodes request header values with it; ASCII one-to-one, for completeness.
    public override int GetByteCount(char[] chars, int index, int count) => count;

    public override int GetBytes(char[] chars, int charIndex, int charCount, byte[] bytes, int byteIndex)
        => ASCII.GetBytes(chars, charIndex, charCount, bytes, byteIndex);

    public override int GetMaxByteCount(int charCount) => charCount;

    /// <summary>
    /// Puts the decoding in front of whatever <see cref="KestrelServerOptions.RequestHeaderEncodingSelector"/>
    /// was configured before; every other header name goes to that one.
    /// </summary>
    internal sealed class KestrelSetup : IConfigureOptions<KestrelServerOptions>
    {
        public void Configure(KestrelServerOptions options)
        {
            var previous = options.RequestHeaderEncodingSelector;
            options.RequestHeaderEncodingSelector = name =>
                name.Length == HeaderNames.ContentLength.Length && string.Equals(name, HeaderNames.ContentLength, StringComparison.OrdinalIgnoreCase)
                    ? Instance
                    : previous(name);
        }
    }
}
