namespace YarpGateway.Telemetry;

/// <summary>How the gateway's log lines name an exception: one line, no stack trace.</summary>
internal static class ExceptionText
{
    /// <summary>One line: each exception's message down the chain, without stack traces or a final period (the line has its own).</summary>
    public static string Describe(Exception? exception)
    {
        if (exception is null)
        {
            return "no exception";
        }

        var text = exception.GetType().Name + ": " + exception.Message;
        for (var inner = exception.InnerException; inner is not null; inner = inner.InnerException)
        {
            if (!exception.Message.Contains(inner.Message, StringComparison.Ordinal))
            {
                text += " <- " + inner.GetType().Name + ": " + inner.Message;
            }
        }

        return text.EndsWith('.') ? text[..^1] : text;
    }
}
