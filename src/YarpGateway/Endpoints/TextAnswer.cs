namespace YarpGateway.Endpoints;

/// <summary>
/// The body of an answer the gateway gives itself: one line of <c>text/plain</c> with its length, so that a client (or an
/// operator with curl) can tell the gateway's answer from a backend's.
/// </summary>
internal static class TextAnswer
{
    /// <summary>Writes <paramref name="text"/> as the response's whole body; the status is the caller's to set first.</summary>
    public static Task WriteAsync(HttpContext context, string text, CancellationToken cancellationToken)
    {
        var body = System.Text.Encoding.UTF8.GetBytes(text);
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body, cancellationToken).AsTask();
    }
}
