using Microsoft.Extensions.Options;
using YarpGateway.Configuration;

namespace YarpGateway.WebSockets;

/// <summary>Lists every bad value under <c>Gateway:WebSockets</c> at once.</summary>
internal sealed class WebSocketProxyOptionsValidator : IValidateOptions<WebSocketProxyOptions>
{
    private const string Prefix = WebSocketProxyOptions.SectionName + ":";

    public ValidateOptionsResult Validate(string? name, WebSocketProxyOptions options)
    {
        var errors = new List<string>();
        if (!WebSocketSettings.IsValidBufferSize(options.OutboundBufferBytes))
        {
            errors.Add($"{Prefix}OutboundBufferBytes must be from {WebSocketSettings.MinBufferBytes} to {WebSocketSettings.MaxBufferBytes}; got {options.OutboundBufferBytes}.");
        }

        if (!Enum.IsDefined(options.SlowClientPolicy))
        {
            errors.Add($"{Prefix}SlowClientPolicy must be {ExpectedValue.Describe(typeof(SlowClientPolicy))}; got {options.SlowClientPolicy}.");
        }

        OptionChecks.Positive(errors, Prefix + "WriteTimeout", options.WriteTimeout);
        OptionChecks.Positive(errors, Prefix + "DisconnectAfter", options.DisconnectAfter);
        OptionChecks.NotNegative(errors, Prefix + "MaxDroppedMessages", options.MaxDroppedMessages);
        OptionChecks.NotNegative(errors, Prefix + "MaxDroppedBytes", options.MaxDroppedBytes);
        OptionChecks.NotNegative(errors, Prefix + "CloseWindow", options.CloseWindow);
        OptionChecks.Positive(errors, Prefix + "CloseTimeout", options.CloseTimeout);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
