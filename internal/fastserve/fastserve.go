// Package fastserve configures fasthttp servers for the HTTP fronts that
// answer many small requests, http-ingress and the controller's plain-HTTP
// (Serverledge) API: fasthttp reuses a connection's request, response and
// buffers, so a request costs no allocations of its own, where net/http
// allocates a dozen and hands each request between goroutines
// (docs/performance.md).
package fastserve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/valyala/fasthttp"

	"github.com/edgeless-go/edgeless/core"
)

// Server returns a server of h within l, whose bodies may be up to maxBody
// bytes; stream hands bodies to h unread (RequestBodyStream), for handlers
// that bound them themselves.
func Server(l core.HTTPLimits, maxBody int, stream bool, h fasthttp.RequestHandler, log *slog.Logger) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: h,
		// The header must come within HeaderTime; the body then has
		// BodyTime.
		ReadTimeout: l.HeaderTime,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: l.BodyTime}
		},
		WriteTimeout: l.BodyTime,
		IdleTimeout:  l.IdleTime,
		// Also the largest header block: the buffer is per connection.
		ReadBufferSize:     l.HeaderBytes,
		MaxRequestBodySize: maxBody,
		StreamRequestBody:  stream,
		// A multipart body is the handler's to read, not the server's to
		// parse (and spill to temporary files).
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		CloseOnShutdown:              true,
		Logger:                       logger{log},
		ErrorHandler:                 requestError,
	}
}

// logger sends fasthttp's messages (bad requests, mostly) to the debug log.
type logger struct{ log *slog.Logger }

func (l logger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

// requestError answers a request the server could not read.
func requestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		Error(ctx, "Request Entity Too Large", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &small):
		Error(ctx, "Request Header Fields Too Large", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.As(err, &ne) && ne.Timeout():
		Error(ctx, "Request Timeout", fasthttp.StatusRequestTimeout)
	default:
		Error(ctx, "Bad Request", fasthttp.StatusBadRequest)
	}
}

// Error answers code with msg as plain text, as net/http's http.Error does.
func Error(ctx *fasthttp.RequestCtx, msg string, code int) {
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(code)
	ctx.SetBodyString(msg + "\n")
}
