package client

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient is the SDK's own buildable client (a plain http.Client breaks where AWS_CA_BUNDLE is
// set) with one race of the SDK taken out.
//
// The SDK closes a request's body as soon as the response headers arrive. The transport may not be
// done with the body yet: after sending Content-Length bytes it reads once more to check for excess,
// and when the body went straight to the socket (bufio's ReadFrom) the server can answer before that
// read. The SDK's closed body then answers WriteTo with io.EOF, which the transport takes for a write
// error, and it closes the connection under the response: an event stream (InvokeEndpointWithResponse
// Stream) then ends in "decode event: ... use of closed network connection" after a few events, on
// a loaded machine. Hiding WriteTo makes that last read a plain Read, whose io.EOF is the end of
// the body it is.
func HTTPClient() aws.HTTPClient { return bodyOwningClient{awshttp.NewBuildableClient()} }

type bodyOwningClient struct{ next aws.HTTPClient }

func (c bodyOwningClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	own := *r // shallow: only Body changes, and the SDK never reads it back
	own.Body = readOnlyBody{r.Body}
	return c.next.Do(&own)
}

// readOnlyBody has the method set of io.ReadCloser and nothing else (no WriteTo).
type readOnlyBody struct{ io.ReadCloser }
