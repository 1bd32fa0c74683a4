// Package lambdaio converts API Gateway events to and from the gateway's
// ordinary http.Handler, the same handler that serves local HTTP. It holds
// no gateway logic: it turns an event into an *http.Request, runs the
// handler, and turns what the handler wrote into the response event.
//
// Two modes, chosen by KEYWAY_RESPONSE_MODE:
//
//   - Stream: REST API (payload 1.0) events in, aws-lambda-go's
//     *events.APIGatewayProxyStreamingResponse out, for an integration with
//     ResponseTransferMode STREAM. The handler runs in a goroutine writing
//     into an io.Pipe, as lambdaurl.Wrap does for Function URLs; the Lambda
//     response is returned as soon as the handler commits its status and
//     headers, so server-sent events reach the caller as they are produced.
//     An upstream that breaks mid-stream ends the Lambda stream with an error
//     (the runtime reports it in the Lambda-Runtime-Function-Error-* trailers),
//     never a silently truncated 200.
//   - Buffered: REST API (1.0) and HTTP API (2.0) events, detected from the
//     payload; the response is collected and returned whole. This is also what
//     `sam local start-api` needs. The handler is given API Gateway's 29 s
//     integration limit (less a margin) and the invocation deadline, whichever
//     ends first; past it the caller gets a 504 in the LiteLLM error envelope
//     instead of API Gateway cutting the connection.
//
// In Lambda a caller that disconnects does not stop the function. Stream
// cancels the handler when the runtime closes the body (its write to the
// Runtime API failed), and IdleTimeout bounds a response whose upstream has
// gone quiet, so an abandoned call is not billed to the function timeout.
//
// Events are converted with aws-lambda-go-api-proxy's request accessors
// (core.RequestAccessor and core.RequestAccessorV2, the code behind
// httpadapter.New and httpadapter.NewV2), fed a sanitised copy of the event
// and corrected afterwards, so that none of that archived library's known
// faults reaches the handler or an upstream:
//
//   - REST v1 paths: the library pastes the event's path into a URL string.
//     A path that arrives decoded (sam local start-api decodes it; a `%25`
//     becomes a bare `%`) fails to parse and the library answers 504 with a
//     non-nil Lambda error; a decoded `?` or `#` splits the path. lambdaio
//     builds the escaped path itself (see rawPathV1) and hands the library
//     a path that always parses.
//   - REST v1 queries: the library rebuilds the query from a Go map, in random
//     order. lambdaio builds it in a stable order.
//   - HTTP API v2 headers: the library splits every non-"singleton" header on
//     commas, so `Accept: a, b` would reach the handler as two values.
//     lambdaio passes each header through as the one value API Gateway sent,
//     and joins v2 cookies into a single Cookie header (RFC 6265 §5.4).
//   - `Proxy` without context injects X-GoLambdaProxy-* request headers;
//     lambdaio never calls it and strips any X-GoLambdaProxy-* header a
//     client sent itself.
//   - Responses: the library's ProxyResponseWriter answers 504 (with a Lambda
//     error) when a handler writes nothing, and base64-encodes by UTF-8
//     validity alone. lambdaio has its own response writers.
//
// Both modes put http.ServerContextKey in the request context.
// httputil.ReverseProxy aborts a response whose upstream body fails mid-copy
// (panic(http.ErrAbortHandler)) only when it sees that key; without it, the
// proxy returns normally and the truncated body would look complete (Go
// issue 23643). lambdaio recovers that panic and reports it.
package lambdaio
