using Microsoft.AspNetCore.Http;
using YarpGateway.Admission;

namespace YarpGateway.Tests.Admission;

public class StreamSlotTests
{
    [Theory]
    [InlineData("text/event-stream", null, true)]
    [InlineData("text/html, text/event-stream;q=0.9", null, true)]
    [InlineData("TEXT/EVENT-STREAM", null, true)]
    [InlineData(null, "application/grpc", true)]
    [InlineData(null, "application/grpc+proto", true)]
    [InlineData("*/*", null, false)]
    [InlineData("application/json", "application/json", false)]
    [InlineData(null, null, false)]
    public void ARequestAsksForAStream_ByItsAcceptOrGrpcContentType(string? accept, string? contentType, bool expected)
    {
        var context = new DefaultHttpContext();
        if (accept is not null)
        {
            context.Request.Headers.Accept = accept;
        }

        context.Request.ContentType = contentType;
        Assert.Equal(expected, StreamSlot.AsksForStream(context.Request));
    }
}
