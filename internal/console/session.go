package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sync"
	"time"
)

// session is one signed-in browser. The keys it signs the console's API calls with stay in this
// process's memory: the browser holds only the session id (an HttpOnly cookie) and the CSRF token.
type session struct {
	id   string
	csrf string

	accessKeyID, secretAccessKey, sessionToken string

	arn, account, userID string
	root                 bool

	created  time.Time
	lastSeen time.Time
}

// sessions is the in-memory table of signed-in browsers; a restart signs everyone out.
type sessions struct {
	mu      sync.Mutex
	byID    map[string]*session
	now     func() time.Time
	idle    time.Duration // a session unused this long has expired
	maxLife time.Duration // and any session this old
}

func newSessions(now func() time.Time, idle, maxLife time.Duration) *sessions {
	return &sessions{byID: map[string]*session{}, now: now, idle: idle, maxLife: maxLife}
}

// randomToken returns 32 random bytes, URL-safe base64.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// add stores a new session for s's keys and identity, giving it a fresh id and CSRF token.
func (t *sessions) add(s *session) error {
	var err error
	if s.id, err = randomToken(); err != nil {
		return err
	}
	if s.csrf, err = randomToken(); err != nil {
		return err
	}
	now := t.now()
	s.created, s.lastSeen = now, now
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	t.byID[s.id] = s
	return nil
}

// get returns the live session with this id (and marks it used), or nil.
func (t *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byID[id]
	if s == nil {
		return nil
	}
	if t.expired(s, now) {
		delete(t.byID, id)
		return nil
	}
	s.lastSeen = now
	return s
}

func (t *sessions) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byID, id)
}

// expiresAt is when s ends if it is not used again.
func (t *sessions) expiresAt(s *session) time.Time {
	idle, life := s.lastSeen.Add(t.idle), s.created.Add(t.maxLife)
	if idle.Before(life) {
		return idle
	}
	return life
}

func (t *sessions) expired(s *session, now time.Time) bool { return !now.Before(t.expiresAt(s)) }

// sweep drops expired sessions; called with mu held on every sign-in, so the table stays as small
// as the number of live sessions plus those that expired since the last sign-in.
func (t *sessions) sweep(now time.Time) {
	for id, s := range t.byID {
		if t.expired(s, now) {
			delete(t.byID, id)
		}
	}
}

// checkCSRF compares a request's token with the session's in constant time.
func (s *session) checkCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}
