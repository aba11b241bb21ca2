package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lathe-ml/lathe/internal/s3api"
)

// startLimited serves the front door, with the real S3 API over a temporary directory, through
// NewHTTPServer with limits l. It returns the base URL.
func startLimited(t *testing.T, l Limits) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	s3h, err := s3api.New(t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Region: testRegion, AccountID: "123456789012", Credentials: testCreds,
		SageMaker: testOperations(), S3: s3h, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(h, l, logger)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// s3From is the SDK's S3 client for url, dialling from local address from ("" for any).
func s3From(url, from string) *s3.Client {
	hc := awshttp.NewBuildableClient()
	if from != "" {
		hc = hc.WithDialerOptions(func(d *net.Dialer) { d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)} })
	}
	return s3.New(s3.Options{Region: testRegion, BaseEndpoint: aws.String(url), UsePathStyle: true,
		Credentials: staticCreds(testCreds), HTTPClient: hc, Retryer: aws.NopRetryer{}})
}

// requestHead renders the request line and headers of a signed request as a client sends them,
// declaring contentLength body bytes.
func requestHead(r *http.Request, contentLength int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.URL.RequestURI(), r.URL.Host)
	_ = r.Header.Write(&b)
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", contentLength)
	return b.String()
}

// signedHead is the head of a PUT (S3) or POST (SageMaker) of a 100-byte body, signed with the
// test credentials; fake spoils its signature.
func signedHead(t *testing.T, base, service string, fake bool) string {
	t.Helper()
	body := bytes.Repeat([]byte("b"), 100)
	var r *http.Request
	if service == "s3" {
		r = signedRequest(t, http.MethodPut, base+"/limits/stalled", "s3", http.Header{"X-Amz-Content-Sha256": {sha256Hex(body)}}, body, "", time.Now())
	} else {
		r = signedRequest(t, http.MethodPost, base+"/", "sagemaker", http.Header{
			"Content-Type": {jsonContentType}, "X-Amz-Target": {"SageMaker.ListAutoMLJobs"}}, body, "", time.Now())
	}
	if fake {
		auth := r.Header.Get("Authorization")
		r.Header.Set("Authorization", auth[:len(auth)-8]+"00000000")
	}
	return requestHead(r, len(body))
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("count open files: %v", err)
	}
	return len(entries)
}

// Connections that stall (headers never finished, nothing sent, a body that stops after 6 of
// 100 bytes, with a fake or a real signature) are closed by the server, and the open files come
// back to where they were.
func TestStalledConnectionsAreClosed(t *testing.T) {
	base := startLimited(t, Limits{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond,
		BodyReadTimeout: 300 * time.Millisecond, MaxUnauthenticatedPerIP: -1})
	if _, err := s3From(base, "").CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("limits")}); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(base, "http://")
	kinds := []struct {
		name, send, wantStatus, wantBody string
		n                                int
	}{
		{"S3 PUT with a fake signature, 6 of 100 body bytes", signedHead(t, base, "s3", true) + "bbbbbb", "403", "<Code>SignatureDoesNotMatch</Code>", 200},
		{"S3 PUT correctly signed, 6 of 100 body bytes", signedHead(t, base, "s3", false) + "bbbbbb", "400", "<Code>RequestTimeout</Code>", 50},
		{"SageMaker call with a fake signature, 6 of 100 body bytes", signedHead(t, base, "sagemaker", true) + "bbbbbb", "400", "RequestTimeout", 50},
		{"headers never finished", "PUT /limits/x HTTP/1.1\r\nHost: " + addr + "\r\nX-Amz-Date: 2", "", "", 50},
		{"nothing sent", "", "", "", 50},
	}
	before := openFDs(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := map[string]int{}
	fail := func(kind, why string) {
		mu.Lock()
		defer mu.Unlock()
		if failures[kind]++; failures[kind] == 1 {
			t.Errorf("%s: %s", kind, why)
		}
	}
	for _, k := range kinds {
		for range k.n {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if _, err := io.WriteString(c, k.send); err != nil {
					fail(k.name, fmt.Sprintf("write: %v", err))
					return
				}
				// The bound only keeps a failing test from hanging: the server's limits are 300ms.
				_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
				got, err := io.ReadAll(c)
				if err != nil && !strings.Contains(err.Error(), "connection reset") {
					fail(k.name, fmt.Sprintf("the server did not close the connection: %v", err))
					return
				}
				if k.wantStatus != "" && (!strings.HasPrefix(string(got), "HTTP/1.1 "+k.wantStatus) || !strings.Contains(string(got), k.wantBody)) {
					fail(k.name, fmt.Sprintf("answer %q, want status %s with %s", got, k.wantStatus, k.wantBody))
				}
			}()
		}
	}
	wg.Wait()
	for kind, n := range failures {
		t.Errorf("%s: %d connections failed", kind, n)
	}
	// The server closes its end half a second after the client sees EOF (http.Server's reset
	// avoidance); give it a few seconds.
	var after int
	for range 100 {
		if after = openFDs(t); after <= before+2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after > before+2 {
		t.Errorf("open files: %d before the stalled connections, %d after they were closed", before, after)
	}
}

// A correctly signed upload that trickles in, pausing well under BodyReadTimeout between
// chunks but taking many times BodyReadTimeout in all, is stored whole.
func TestSlowButProgressingUploadSucceeds(t *testing.T) {
	const timeout = time.Second
	base := startLimited(t, Limits{ReadHeaderTimeout: timeout, IdleTimeout: timeout, BodyReadTimeout: timeout})
	client := s3From(base, "")
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("limits")}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	r := signedRequest(t, http.MethodPut, base+"/limits/slow", "s3", http.Header{"X-Amz-Content-Sha256": {sha256Hex(body)}}, body, "", time.Now())
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, requestHead(r, len(body))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const chunk, pause = 1024, 50 * time.Millisecond // 64 pauses: about 3s, three BodyReadTimeouts
	for off := 0; off < len(body); off += chunk {
		time.Sleep(pause)
		if _, err := c.Write(body[off : off+chunk]); err != nil {
			t.Fatalf("the server stopped taking the body after %d bytes: %v", off, err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), r)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("slow upload: %s %s", resp.Status, answer)
	}
	t.Logf("uploaded %d bytes in %v with BodyReadTimeout %v", len(body), time.Since(start).Round(time.Millisecond), timeout)
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("limits"), Key: aws.String("slow")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("stored %d bytes, want the %d sent", len(got), len(body))
	}
}

// One address may hold at most MaxUnauthenticatedPerIP connections on which nothing has
// authenticated; the next is answered 503 and closed. Other addresses are not affected, and a
// connection that authenticated does not count.
func TestUnauthenticatedConnectionsCappedPerAddress(t *testing.T) {
	const capacity = 5
	base := startLimited(t, Limits{MaxUnauthenticatedPerIP: capacity}) // default (long) timeouts
	addr := strings.TrimPrefix(base, "http://")
	ctx := context.Background()
	health := "GET /_lathe/health HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"

	// healthOn sends a health check on c and returns the status line ("" when closed instead).
	healthOn := func(c net.Conn) string {
		if _, err := io.WriteString(c, health); err != nil {
			return ""
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}
	var held []net.Conn
	for range capacity {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		defer c.Close()
	}
	// The server counts a connection when it accepts it; a request answered on each of the
	// held ones proves all were accepted (and health checks do not authenticate).
	for i, c := range held {
		if got := healthOn(c); got != "HTTP/1.1 200 OK" {
			t.Fatalf("held connection %d: %q", i, got)
		}
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if got := healthOn(over); got != "HTTP/1.1 503 Service Unavailable" && got != "" {
		t.Errorf("connection %d from one address: %q, want 503 and close", capacity+1, got)
	}

	// Another address is served.
	if _, err := s3From(base, "127.0.0.2").ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Errorf("signed request from 127.0.0.2 while 127.0.0.1 is at its cap: %v", err)
	}
	// Closing one held connection makes room; a signed request on the new connection takes it
	// out of the count, so one more unauthenticated connection fits.
	held[0].Close()
	client := s3From(base, "127.0.0.1")
	var listErr error
	for range 50 { // the server notices the close when it next reads that connection
		if _, listErr = client.ListBuckets(ctx, &s3.ListBucketsInput{}); listErr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if listErr != nil {
		t.Fatalf("signed request after a held connection closed: %v", listErr)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if got := healthOn(extra); got != "HTTP/1.1 200 OK" {
		t.Errorf("unauthenticated connection after the SDK's authenticated one: %q, want 200", got)
	}
}
