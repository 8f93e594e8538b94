package sim

import (
	"fmt"
	"net/http"
	"time"
)

// faults are injected failures for fault-handling tests. Stream faults
// apply to streams opened after they are set.
type faults struct {
	failN      int
	failStatus int
	failBody   string
	cutEvents  int
	cutAfter   time.Duration
	errAfter   int
	errMsg     string
	deny       map[string]bool
}

type failure struct {
	status int
	body   string
}

// requestFaults is the snapshot of faults one tap request is subject to.
type requestFaults struct {
	fail      *failure
	cutEvents int
	cutAfter  time.Duration
	errAfter  int
	errMsg    string
	deny      map[string]bool
}

func (f requestFaults) denied(user string) bool { return f.deny[user] }

func (s *Simulator) faultsForRequest() requestFaults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	rf := requestFaults{cutEvents: f.cutEvents, cutAfter: f.cutAfter, errAfter: f.errAfter, errMsg: f.errMsg, deny: f.deny}
	if f.failN > 0 {
		f.failN--
		rf.fail = &failure{status: f.failStatus, body: f.failBody}
	}
	return rf
}

// FailNext answers the next n tap requests with status and body instead of
// tapping. An empty body becomes a Kubernetes Status object, as the
// apiserver sends when the APIService is unavailable (503) or the caller is
// forbidden (403).
func (s *Simulator) FailNext(n, status int, body string) {
	if body == "" {
		body = statusJSON(status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failN, s.faults.failStatus, s.faults.failBody = n, status, body
}

func statusJSON(code int) string {
	reason := map[int]string{401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}[code]
	msg := http.StatusText(code)
	if code == http.StatusServiceUnavailable {
		msg = "the server is currently unable to handle the request"
	}
	return fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`+"\n", msg, reason, code)
}

// CutStreamsAfterEvents aborts every new tap stream's connection after it
// has written n events (0 turns the fault off).
func (s *Simulator) CutStreamsAfterEvents(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.cutEvents = n
}

// CutStreamsAfter aborts every new tap stream's connection d of wall time
// after it opened (0 turns the fault off).
func (s *Simulator) CutStreamsAfter(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.cutAfter = d
}

// ErrorMidStream makes every new tap stream send an ApiError frame holding
// msg after n events and end, as Linkerd's tap server does when sending
// fails mid-stream (0 turns the fault off).
func (s *Simulator) ErrorMidStream(n int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.errAfter, s.faults.errMsg = n, msg
}

// DenyUsers makes the tap server's own authorization check refuse these
// X-Remote-User values with 403 and a JSON error, as Linkerd's does when
// the SubjectAccessReview fails.
func (s *Simulator) DenyUsers(users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.deny = map[string]bool{}
	for _, u := range users {
		s.faults.deny[u] = true
	}
}
