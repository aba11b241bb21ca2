package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lathe-ml/lathe/internal/audit"
	"github.com/lathe-ml/lathe/internal/iam"
)

// The audit trail: every request to an AWS API on the port (not health probes, scrapes or the
// console's pages) becomes one audit.Event, written once the request is answered. The decision is
// the one authorize made (the first denial, else the first allowance); a request that authorize
// never saw is the root's, an unauthenticated one, or an IAM/STS call that IAM authorized itself
// (its status tells).

type auditKey struct{}

type auditEntry struct {
	mu        sync.Mutex
	decided   bool
	signed    bool // the signature checked out
	principal string
	action    string
	resource  string
	decision  iam.Decision
}

// startAudit gives the request a place for authorize to note its decision.
func (s *server) startAudit(r *http.Request, which api) *http.Request {
	if s.cfg.Audit == nil || which == apiLathe || which == apiMetrics {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), auditKey{}, &auditEntry{}))
}

// NoteDecision records, for the audit line of the request being served (ctx), an authorization
// made outside the front door (iam:PassRole of an execution role).
func NoteDecision(ctx context.Context, p *iam.Principal, action, resource string, d iam.Decision) {
	noteDecision(ctx, p, action, resource, d)
}

// noteDecision records an authorization of the request being served.
func noteDecision(ctx context.Context, p *iam.Principal, action, resource string, d iam.Decision) {
	e, _ := ctx.Value(auditKey{}).(*auditEntry)
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.decided && (!e.decision.Allowed || d.Allowed) {
		return // keep the first denial, or the first allowance while all are allowed
	}
	e.decided, e.principal, e.action, e.resource, e.decision = true, p.ARN, action, resource, d
}

// markAuthenticated notes that the request's signature checked out.
func markAuthenticated(ctx context.Context) {
	if e, _ := ctx.Value(auditKey{}).(*auditEntry); e != nil {
		e.mu.Lock()
		e.signed = true
		e.mu.Unlock()
	}
}

// writeAudit writes the request's line.
func (s *server) writeAudit(r *http.Request, rec *recorder, which api) {
	e, _ := r.Context().Value(auditKey{}).(*auditEntry)
	if e == nil {
		return
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	ev := audit.Event{Time: time.Now().UTC(), RequestID: RequestID(r.Context()), AccessKey: rec.accessKey, API: apiNames[which], Status: status}
	if ev.AccessKey == "" {
		ev.AccessKey = claimedAccessKey(r)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		ev.SourceIP = host
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.decided {
		ev.Principal, ev.Action, ev.Resource = e.principal, e.action, e.resource
		ev.Allowed, ev.Decision, ev.Policy = e.decision.Allowed, e.decision.Result.Decision.String(), e.decision.Result.Policy
		if st := e.decision.Result.Statement; st != nil {
			ev.Statement = st.Sid
			if ev.Statement == "" {
				ev.Statement = "#" + strconv.Itoa(st.Index)
			}
		}
	} else if which == apiOpenAI {
		// The OpenAI API checks its own bearer key: no IAM principal, no access key.
		ev.Action, ev.Allowed, ev.Decision = "openai:"+r.Method+" "+r.URL.Path, status != http.StatusUnauthorized, "BearerKey"
	} else {
		ev.Action = apiNames[which] + ":" + rec.op
		if which == apiS3 && rec.op == "" {
			ev.Action = "s3:" + s3Operation(r)
		}
		switch {
		case !e.signed:
			ev.Decision = "Unauthenticated"
		case rec.accessKey == s.cfg.Credentials.AccessKeyID || s.cfg.IAM == nil:
			ev.Principal, ev.Allowed, ev.Decision = "arn:aws:iam::"+s.cfg.AccountID+":root", true, "Root"
		default:
			// IAM and STS decide inside their own operations; the answer says how it went.
			if p, err := s.cfg.IAM.Resolve(r.Context(), rec.accessKey, r.Header.Get("X-Amz-Security-Token")); err == nil {
				ev.Principal = p.ARN
			}
			ev.Allowed = status != http.StatusForbidden
			ev.Decision = "Allow"
			if !ev.Allowed {
				ev.Decision = "Deny"
			}
		}
	}
	if err := s.cfg.Audit.Write(ev); err != nil {
		s.log.Error("write audit log", "request_id", ev.RequestID, "err", err)
	}
}

// claimedAccessKey is the access key a request says it is signed with (also when the signature
// was refused): the first part of its credential scope.
func claimedAccessKey(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, after, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return ""
		}
		cred, _, _ = strings.Cut(after, ",")
	}
	key, _, _ := strings.Cut(strings.TrimSpace(cred), "/")
	return key
}
