package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// Limits bounds what a client can hold open on the port. A zero field takes its default.
type Limits struct {
	// ReadHeaderTimeout is how long a client has to send a request's headers, counted from the
	// moment the connection is ready for a request (default 20s).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no next request (default 2m).
	IdleTimeout time.Duration
	// BodyReadTimeout is the longest a request body may go without a byte arriving (default
	// 30s). It is a deadline pushed forward by every read, not a limit on the whole request: a
	// 5 GB part at 10 MB/s keeps going, a body that stops does not hold its connection. S3
	// answers such a stall with 400 RequestTimeout after about 20s.
	BodyReadTimeout time.Duration
	// MaxUnauthenticatedPerIP caps the connections one client address may hold open before a
	// request on them has passed a signature check (default 512; negative: no cap). New
	// connections beyond it are answered 503 and closed. Connections that authenticated do not
	// count, so a client with credentials is never kept out by its own open connections.
	MaxUnauthenticatedPerIP int
}

// DefaultLimits are the limits a zero Limits stands for.
var DefaultLimits = Limits{
	ReadHeaderTimeout:       20 * time.Second,
	IdleTimeout:             2 * time.Minute,
	BodyReadTimeout:         30 * time.Second,
	MaxUnauthenticatedPerIP: 512,
}

func (l Limits) withDefaults() Limits {
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = DefaultLimits.ReadHeaderTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = DefaultLimits.IdleTimeout
	}
	if l.BodyReadTimeout == 0 {
		l.BodyReadTimeout = DefaultLimits.BodyReadTimeout
	}
	if l.MaxUnauthenticatedPerIP == 0 {
		l.MaxUnauthenticatedPerIP = DefaultLimits.MaxUnauthenticatedPerIP
	}
	return l
}

// HTTPServer is the http.Server for the front door (or any handler) with Limits applied: the
// timeouts on the server, the per-address cap on the listener it serves.
type HTTPServer struct {
	*http.Server
	limits Limits
	log    *slog.Logger

	mu       sync.Mutex
	unauth   map[string]int // open, not yet authenticated connections by client address
	lastWarn time.Time
}

// NewHTTPServer returns a server for h with limits l (zero fields: DefaultLimits). Serve it
// with its Serve method, which applies the per-address cap; Shutdown and Close are
// http.Server's.
func NewHTTPServer(h http.Handler, l Limits, logger *slog.Logger) *HTTPServer {
	if logger == nil {
		logger = slog.Default()
	}
	l = l.withDefaults()
	s := &HTTPServer{limits: l, log: logger, unauth: map[string]int{}}
	s.Server = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: positive(l.ReadHeaderTimeout),
		IdleTimeout:       positive(l.IdleTimeout),
		// No ReadTimeout or WriteTimeout: they bound a whole request or response, which would
		// cut off large uploads and long streamed generations. Stalls are caught per read.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*trackedConn); ok {
				return context.WithValue(ctx, connKey{}, tc)
			}
			return ctx
		},
	}
	return s
}

// positive turns a negative (disabled) duration into the zero http.Server reads as "none".
func positive(d time.Duration) time.Duration { return max(d, 0) }

// Serve accepts connections on ln and serves them, as http.Server.Serve does.
func (s *HTTPServer) Serve(ln net.Listener) error {
	return s.Server.Serve(&limitListener{Listener: ln, srv: s})
}

// admit counts a new connection from ip against the cap; false means refuse it.
func (s *HTTPServer) admit(ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max := s.limits.MaxUnauthenticatedPerIP; max > 0 && s.unauth[ip] >= max {
		if time.Since(s.lastWarn) > 10*time.Second { // one line, not one per refused connection
			s.lastWarn = time.Now()
			s.log.Warn("refusing connections: too many unauthenticated connections from one address",
				"client", ip, "open", s.unauth[ip], "max", max)
		}
		return false
	}
	s.unauth[ip]++
	return true
}

func (s *HTTPServer) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unauth[ip]--; s.unauth[ip] <= 0 {
		delete(s.unauth, ip)
	}
}

type limitListener struct {
	net.Listener
	srv *HTTPServer
}

// tooBusy is written to a connection refused by the cap: SDKs retry a 503 with back-off.
const tooBusy = "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 58\r\n\r\n" +
	"Too many unauthenticated connections from your address.\r\n"

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		if l.srv.admit(ip) {
			return &trackedConn{Conn: c, srv: l.srv, ip: ip}, nil
		}
		// A fresh socket's send buffer takes the answer at once; the deadline only guards
		// against a peer that is already gone.
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(c, tooBusy)
		_ = c.Close()
	}
}

// trackedConn is an accepted connection, counted against its address's cap until a request on
// it authenticates or it closes.
type trackedConn struct {
	net.Conn
	srv   *HTTPServer
	ip    string
	state atomic.Int32 // connCounted, connAuthenticated or connClosed
}

const (
	connCounted int32 = iota
	connAuthenticated
	connClosed
)

type connKey struct{}

// connFrom returns the connection a request arrived on, or nil when it was not served by an
// HTTPServer (httptest servers in tests).
func connFrom(ctx context.Context) *trackedConn {
	c, _ := ctx.Value(connKey{}).(*trackedConn)
	return c
}

// authenticate takes the connection out of its address's count (once).
func (c *trackedConn) authenticate() {
	if c.state.CompareAndSwap(connCounted, connAuthenticated) {
		c.srv.release(c.ip)
	}
}

func (c *trackedConn) authenticated() bool { return c.state.Load() == connAuthenticated }

func (c *trackedConn) Close() error {
	if c.state.Swap(connClosed) == connCounted {
		c.srv.release(c.ip)
	}
	return c.Conn.Close()
}

// CloseWrite lets http.Server half-close the connection before closing it, as it does for a
// *net.TCPConn, so that the client reads the last response before a reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// errRequestTimeout is S3's answer to a body that stopped arriving.
var errRequestTimeout = &awserr.Error{Status: http.StatusBadRequest, Code: "RequestTimeout",
	Message: "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed."}

// watchedBody is a request body under a progress deadline: each read must see bytes within
// timeout of its start. Once the body is complete the deadline is lifted, so that a handler
// that takes long to answer (a generation, a training call) is not cut off by it.
type watchedBody struct {
	io.ReadCloser
	rc        *http.ResponseController
	timeout   time.Duration // 0: no deadline, only completion tracking
	remaining int64         // bytes still expected; -1 when the length is unknown
	done      atomic.Bool
}

// watchBody wraps r.Body (which must not be empty). The first deadline starts now, so a body
// the handler never reads cannot hold the connection either.
func watchBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) *watchedBody {
	b := &watchedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), timeout: max(timeout, 0), remaining: r.ContentLength}
	b.extend()
	return b
}

func (b *watchedBody) extend() {
	if b.timeout > 0 {
		// ErrNotSupported (a writer that is not a connection's) leaves the body unwatched.
		_ = b.rc.SetReadDeadline(time.Now().Add(b.timeout))
	}
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return b.ReadCloser.Read(p)
	}
	b.extend()
	n, err := b.ReadCloser.Read(p)
	if b.remaining >= 0 {
		b.remaining -= int64(n)
	}
	if err == io.EOF || (err == nil && b.remaining == 0) {
		b.finish()
	}
	if err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err)) {
		return n, errRequestTimeout
	}
	return n, err
}

func (b *watchedBody) finish() {
	if b.done.CompareAndSwap(false, true) && b.timeout > 0 {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
}

// complete reports whether the whole body has been read.
func (b *watchedBody) complete() bool { return b.done.Load() }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
