package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

// Options tune a Source. The zero value is ready to use.
type Options struct {
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// between reconnects (defaults 250ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// HTTPClient replaces the client built from the rest.Config (tests).
	HTTPClient *http.Client
	// Now is the clock for coverage intervals (default time.Now).
	Now func() time.Time
	// PodPoll is how often a target's pods are listed while it is tapped;
	// when the set of tappable pods changes the tap is re-opened (default
	// 2s; negative disables). Only with a clientset.
	PodPoll time.Duration
	// RequestHeaders keeps request headers in RequestInit events. Only a
	// recording needs them; without it they are not decoded (wire.Decoder
	// SkipRequestHeaders). Response headers and trailers are always kept.
	RequestHeaders bool
}

// Source taps targets live through the tap.linkerd.io aggregated API. It
// implements gate.Source and gate.CoverageSource.
type Source struct {
	client  *http.Client
	base    string // apiserver URL without trailing slash, may carry a path prefix
	cs      kubernetes.Interface
	targets []gate.Target
	ns      string
	opts    Options
	streams []stream

	sinkMu sync.Mutex // serializes calls into the sink across targets

	mu   sync.Mutex
	open [][]interval // per target, the intervals its stream was open

	events []atomic.Uint64 // per target, events received
	proto  []atomic.Value  // per target, the protocol of the last stream
}

// stream is what Run needs per target, prepared once by NewSource.
type stream struct {
	label string // e.g. "deploy/web", for messages
	url   string
	body  []byte
	req   *pb.TapByResourceRequest
}

type interval struct {
	from, to time.Time // to is zero while the stream is open
}

var (
	_ gate.Source         = (*Source)(nil)
	_ gate.CoverageSource = (*Source)(nil)
)

// NewSource prepares a live tap of targets; ns is the default namespace. cs
// may be nil; when set, Run first checks each target exists and has
// tappable pods (Resolve) so that the error says what is wrong. Invalid
// targets are reported here as *Error of kind BadTarget.
func NewSource(cfg *rest.Config, cs kubernetes.Interface, targets []gate.Target, ns string, opts Options) (*Source, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(5*time.Second, opts.MinBackoff)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PodPoll == 0 {
		opts.PodPoll = 2 * time.Second
	}
	if cfg == nil {
		return nil, errors.New("kube: no REST config")
	}
	u, _, err := rest.DefaultServerUrlFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: apiserver address %q: %w", cfg.Host, err)
	}
	s := &Source{
		client:  opts.HTTPClient,
		base:    strings.TrimRight(u.String(), "/"),
		cs:      cs,
		targets: targets,
		ns:      ns,
		opts:    opts,
		open:    make([][]interval, len(targets)),
		events:  make([]atomic.Uint64, len(targets)),
		proto:   make([]atomic.Value, len(targets)),
	}
	if s.client == nil {
		c := rest.CopyConfig(cfg)
		// A tap is a long-lived stream: a client timeout (--request-timeout)
		// would cut every stream after that long.
		c.Timeout = 0
		// client-go's transport already dials with TCP keepalive (30s) and
		// enables HTTP/2 read-idle pings (HTTP2_READ_IDLE_TIMEOUT_SECONDS),
		// which detect a dead apiserver connection on an idle target.
		if s.client, err = rest.HTTPClientFor(c); err != nil {
			return nil, fmt.Errorf("kube: building the HTTP client: %w", err)
		}
	}
	for _, t := range targets {
		label := targetLabel(t)
		req, err := wire.BuildRequest(t, ns)
		if err != nil {
			return nil, &Error{Kind: BadTarget, Target: label, Msg: err.Error()}
		}
		body, err := proto.Marshal(req)
		if err != nil {
			return nil, &Error{Kind: BadTarget, Target: label, Msg: "encoding the tap request: " + err.Error()}
		}
		s.streams = append(s.streams, stream{label: label, url: s.base + wire.RequestPath(req), body: body, req: req})
	}
	return s, nil
}

func targetLabel(t gate.Target) string {
	r := t.Resource.String()
	if t.Name != "" && t.Name != r {
		if r == "" {
			return t.Name
		}
		return t.Name + " (" + r + ")"
	}
	return r
}

// Run taps every target concurrently until ctx is done. It returns nil when
// ctx ends, or the first permanent error (*Error), after stopping the other
// streams. A target whose stream never opened before ctx ended because of
// transient failures yields an *Error of kind Unreachable. The *Event
// passed to sink.Observe is reused after Observe returns; its strings,
// headers and label maps may be kept (label maps must not be modified).
func (s *Source) Run(ctx context.Context, sink gate.Sink) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	noter, _ := sink.(gate.Noter)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for i := range s.streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.tap(ctx, i, sink, noter); err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (s *Source) note(n gate.Noter, i int, format string, args ...any) {
	if n == nil {
		return
	}
	s.sinkMu.Lock()
	defer s.sinkMu.Unlock()
	n.Note(i, format, args...)
}

// tap keeps target i's stream open until ctx ends or a permanent error.
func (s *Source) tap(ctx context.Context, i int, sink gate.Sink, noter gate.Noter) error {
	st := &s.streams[i]
	var changed <-chan string
	if s.cs != nil {
		r, err := Resolve(ctx, s.cs, s.targets[i], s.ns)
		var ke *Error
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			s.note(noter, i, "%s: %s", st.label, r.summary())
			if s.opts.PodPoll > 0 {
				changed = s.watchPods(ctx, i, r.TappableNames)
			}
		case errors.As(err, &ke) && (ke.Kind == NotFound || ke.Kind == NoPods || ke.Kind == BadTarget):
			ke.Target = st.label
			return ke
		default:
			// A Role that allows tap but not reading workloads is valid:
			// the tap itself will tell whether the target is tappable.
			s.note(noter, i, "%s: could not pre-check the target (%v); tapping anyway", st.label, firstLine(err))
		}
	}

	backoff := s.opts.MinBackoff
	var (
		opened   bool      // the stream was open at least once
		brokeAt  time.Time // when the last open stream ended
		lived    time.Duration
		broke    error // why the last open stream ended
		cause    error // why the last attempt failed
		attempts int   // failed attempts since the last open stream
	)
	reopen := false // the last stream was closed because the pods changed
	for {
		// Each connection has its own context: a change of the target's
		// pods cancels it, and the loop re-opens the tap at once.
		connCtx, cancelConn := context.WithCancel(ctx)
		var podChange atomic.Pointer[string]
		if changed != nil {
			go func() {
				select {
				case msg := <-changed:
					podChange.Store(&msg)
					cancelConn()
				case <-connCtx.Done():
				}
			}()
		}
		// Coverage starts when the request is sent: a tap server sends its
		// response headers with the first event, so for a quiet target the
		// 200 may arrive seconds after the tap began.
		sent := s.opts.Now()
		resp, err := s.connect(connCtx, st, opened)
		if ctx.Err() != nil {
			cancelConn()
			if resp != nil {
				resp.Body.Close()
			}
			if !opened && cause != nil {
				return &Error{Kind: Unreachable, Target: st.label,
					Msg:  fmt.Sprintf("the tap stream never opened (%d attempts, last: %v)", attempts, firstLine(cause)),
					Hint: "check that the apiserver is reachable and the tap API is healthy: linkerd viz check"}
			}
			if !opened {
				s.note(noter, i, "the tap request for %s had no answer when the window ended: a tap server sends nothing until the first event, so either no request reached the target's pods or the tap server is not answering (linkerd viz check); coverage is counted as 0", st.label)
			}
			s.noteSilent(noter, i, opened)
			return nil
		}
		if msg := podChange.Load(); msg != nil {
			// The pods changed while connecting: connect again.
			cancelConn()
			if resp != nil {
				resp.Body.Close()
			}
			s.note(noter, i, "%s; re-opening the tap", *msg)
			continue
		}
		var ke *Error
		if errors.As(err, &ke) {
			if !(opened && ke.Kind == TapRefused) {
				cancelConn()
				ke.Target = st.label
				return ke
			}
			// Mid-window, "no pods to tap" is a rollout between old and
			// new pods, not a wrong target: keep trying.
		}
		if err != nil {
			if attempts == 0 && !opened {
				s.note(noter, i, "tap stream for %s could not open (%v); retrying", st.label, firstLine(err))
			}
			attempts++
			cause = err
		} else {
			start := sent
			switch {
			case opened && !reopen:
				msg := fmt.Sprintf("tap stream for %s broke after %s (%v); reconnected after %s",
					st.label, round(lived), firstLine(broke), round(start.Sub(brokeAt)))
				if attempts > 0 {
					msg += fmt.Sprintf(" (%d failed attempts)", attempts)
				}
				s.note(noter, i, "%s", msg)
			case attempts > 0:
				s.note(noter, i, "tap stream for %s opened after %d failed attempts", st.label, attempts)
			}
			opened, attempts, reopen = true, 0, false
			s.mark(i, start, true)
			err = s.read(connCtx, i, resp, sink)
			brokeAt = s.opts.Now()
			s.mark(i, brokeAt, false)
			lived = brokeAt.Sub(start)
			if ctx.Err() != nil {
				cancelConn()
				s.noteSilent(noter, i, true)
				return nil
			}
			if msg := podChange.Load(); msg != nil {
				cancelConn()
				s.note(noter, i, "%s; the tap was re-opened to include them (Linkerd taps only the pods that exist when a tap begins)", *msg)
				backoff, reopen = s.opts.MinBackoff, true
				continue
			}
			if errors.As(err, &ke) {
				cancelConn()
				ke.Target = st.label
				return ke
			}
			if err == nil {
				err = errors.New("the server ended the stream")
			}
			broke = err
			if lived > s.opts.MaxBackoff {
				// The stream was healthy; start over from a short delay.
				backoff = s.opts.MinBackoff
			}
		}
		cancelConn()
		// Full backoff with jitter in [backoff/2, backoff) so that many
		// targets broken by one apiserver restart do not reconnect in step.
		d := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, s.opts.MaxBackoff)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

func round(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// mark opens (or closes) target i's current coverage interval at t.
func (s *Source) mark(i int, t time.Time, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if open {
		s.open[i] = append(s.open[i], interval{from: t})
		return
	}
	if n := len(s.open[i]); n > 0 && s.open[i][n-1].to.IsZero() {
		s.open[i][n-1].to = t
	}
}

// Tapped is how long target i's stream was open within [from, to). A stream
// still open counts until now.
func (s *Source) Tapped(i int, from, to time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.open) {
		return 0
	}
	var now time.Time
	var total time.Duration
	for _, iv := range s.open[i] {
		end := iv.to
		if end.IsZero() {
			if now.IsZero() {
				now = s.opts.Now()
			}
			end = now
		}
		a, b := iv.from, end
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			total += b.Sub(a)
		}
	}
	return total
}

// connect POSTs the tap request. It returns the open 200 response, a
// permanent *Error, or a transient error worth a reconnect.
func (s *Source) connect(ctx context.Context, st *stream, opened bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.url, bytes.NewReader(st.body))
	if err != nil {
		return nil, &Error{Kind: BadTarget, Msg: "building the request: " + err.Error()}
	}
	// Like `linkerd viz tap`: the body is the bare, unframed protobuf, sent
	// without a Content-Type (the tap server does not look at it).
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", req.URL.Path, unwrapURL(err))
	}
	if msg := resp.Header.Get(wire.ErrorHeader); msg != "" {
		defer resp.Body.Close()
		return nil, tapRefused(resp, msg, st)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, classify(resp.StatusCode, body, st, opened)
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if u := ue.Unwrap(); u != nil {
			return u
		}
	}
	return err
}

// tapRefused decodes the ApiError frame of a linkerd-error response.
func tapRefused(resp *http.Response, header string, st *stream) error {
	msg := header
	if b, err := wire.NewFrameReader(io.LimitReader(resp.Body, 1<<20)).Next(); err == nil {
		if m, err := wire.DecodeAPIError(b); err == nil && m != "" {
			msg = strings.TrimSpace(m)
		}
	}
	e := &Error{Kind: TapRefused, Status: resp.StatusCode, Msg: "the tap server refused the request: " + msg}
	if strings.Contains(msg, "no pods to tap") {
		r := st.req.GetTarget().GetResource()
		nsFlag := ""
		if r.GetNamespace() != "" {
			nsFlag = " -n " + r.GetNamespace()
		}
		e.Hint = fmt.Sprintf("the target has no meshed, running pod with tap enabled: check `linkerd viz stat %s/%s%s`; "+
			"mesh it with `linkerd inject`, and remove any %s: \"true\" annotation", r.GetType(), r.GetName(), nsFlag, disableTapAnnot)
	}
	return e
}

// classify turns a non-200 answer into a permanent *Error or a transient
// error. opened says whether this target's stream ever opened: a 503 then
// means the tap API is restarting, not missing.
func classify(code int, body []byte, st *stream, opened bool) error {
	var status metav1.Status
	isStatus := json.Unmarshal(body, &status) == nil && status.Kind == "Status"
	var tapErr struct {
		Error string `json:"error"`
	}
	isTapErr := !isStatus && json.Unmarshal(body, &tapErr) == nil && tapErr.Error != ""
	text := strings.TrimSpace(string(body))
	switch {
	case isStatus && status.Message != "":
		text = status.Message
	case isTapErr:
		text = tapErr.Error
	}
	if len(text) > 512 {
		text = text[:512] + "..."
	}

	switch {
	case isTapErr && code != http.StatusServiceUnavailable:
		return &Error{Kind: TapServer, Status: code, Msg: fmt.Sprintf("the tap server answered HTTP %d: %s", code, text),
			Hint: "the tap server rejected the request itself; run `linkerd viz check` and check the tap pod's logs: kubectl logs -n linkerd-viz deploy/tap"}
	case code == http.StatusUnauthorized:
		return &Error{Kind: Unauthorized, Status: code, Msg: "the apiserver rejected the credentials: " + text,
			Hint: "refresh the kubeconfig credentials (kubectl get ns should work)"}
	case code == http.StatusForbidden:
		return forbidden(code, text, st)
	case code == http.StatusNotFound:
		return &Error{Kind: Unavailable, Status: code, Msg: "the tap API (tap.linkerd.io/v1alpha1) is not served: " + text,
			Hint: "is linkerd-viz installed? run `linkerd viz check` (kubectl get apiservice v1alpha1.tap.linkerd.io)"}
	case code == http.StatusServiceUnavailable && !opened:
		return &Error{Kind: Unavailable, Status: code, Msg: "the tap API (tap.linkerd.io/v1alpha1) is unavailable: " + text,
			Hint: "is linkerd-viz installed and its tap pod ready? run `linkerd viz check` (kubectl get apiservice v1alpha1.tap.linkerd.io)"}
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable ||
		code == http.StatusInternalServerError || code == http.StatusBadGateway || code == http.StatusGatewayTimeout:
		// Overload (API priority and fairness), a tap pod restarting, a
		// proxy in front of the apiserver: worth a reconnect.
		return fmt.Errorf("HTTP %d: %s", code, text)
	}
	return &Error{Kind: TapServer, Status: code, Msg: fmt.Sprintf("unexpected answer HTTP %d: %s", code, text),
		Hint: "run `linkerd viz check`"}
}

// forbidden explains an RBAC denial of the tap subresource.
func forbidden(code int, text string, st *stream) error {
	r := st.req.GetTarget().GetResource()
	res := r.GetType() + "s"
	e := &Error{Kind: Forbidden, Status: code, Msg: "RBAC denied the tap: " + text}
	var b strings.Builder
	if r.GetType() == wire.TypeNamespace {
		fmt.Fprintf(&b, "missing permission: verb \"watch\" on resource \"namespaces/tap\" in API group \"tap.linkerd.io\" (namespace %q)\n", r.GetName())
		fmt.Fprintf(&b, "check: kubectl auth can-i watch namespaces.tap.linkerd.io/%s --subresource=tap\n", r.GetName())
		b.WriteString("grant it with a ClusterRole bound (ClusterRoleBinding) to the user or ServiceAccount above:\n")
		b.WriteString("  apiVersion: rbac.authorization.k8s.io/v1\n  kind: ClusterRole\n  metadata:\n    name: tapgate\n")
		b.WriteString("  rules:\n  - apiGroups: [\"tap.linkerd.io\"]\n    resources: [\"namespaces/tap\"]\n    verbs: [\"watch\"]")
	} else {
		ns := r.GetNamespace()
		fmt.Fprintf(&b, "missing permission: verb \"watch\" on resource \"%s/tap\" in API group \"tap.linkerd.io\" in namespace %q\n", res, ns)
		fmt.Fprintf(&b, "check: kubectl auth can-i watch %s.tap.linkerd.io --subresource=tap -n %s\n", res, ns)
		b.WriteString("grant it with a Role bound (RoleBinding) to the user or ServiceAccount above:\n")
		fmt.Fprintf(&b, "  apiVersion: rbac.authorization.k8s.io/v1\n  kind: Role\n  metadata:\n    name: tapgate\n    namespace: %s\n", ns)
		fmt.Fprintf(&b, "  rules:\n  - apiGroups: [\"tap.linkerd.io\"]\n    resources: [\"%s/tap\"]\n    verbs: [\"watch\"]", res)
	}
	e.Hint = b.String()
	return e
}

// read delivers target i's events until the stream ends. It returns nil
// or a transient error when the stream broke, a permanent *Error when the
// response is not a tap stream.
func (s *Source) read(ctx context.Context, i int, resp *http.Response, sink gate.Sink) error {
	// Closing the body unblocks a Read at once when ctx ends, whatever the
	// transport does with the request context.
	stop := context.AfterFunc(ctx, func() { resp.Body.Close() })
	defer func() {
		stop()
		resp.Body.Close()
	}()
	s.proto[i].Store(resp.Proto)
	// The Decoder turns the tap server's frames straight into events (the
	// generated protobuf code costs ten times as much per event); a frame
	// it does not decode to an event takes the general path below.
	dec := wire.NewDecoder(resp.Body)
	dec.SkipRequestHeaders = !s.opts.RequestHeaders
	fr := dec.Frames()
	var pe pb.TapEvent
	var ev gate.Event // reused: see Run
	for {
		b, err := fr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, wire.ErrFrameTooLarge) {
			return &Error{Kind: Protocol, Status: resp.StatusCode,
				Msg:  "the response is not a tap stream: " + err.Error(),
				Hint: "is something other than the Kubernetes apiserver answering? check the kubeconfig server address"}
		}
		if err != nil {
			return err
		}
		if err := dec.Decode(b, &ev); err == nil && ev.Kind != 0 {
			s.events[i].Add(1)
			s.sinkMu.Lock()
			sink.Observe(i, &ev)
			s.sinkMu.Unlock()
			continue
		}
		if err := wire.DecodeEvent(b, &pe); err != nil || pe.GetHttp() == nil {
			// The tap server reports a failure mid-stream as an ApiError
			// frame on the already-200 response; reopen the stream.
			if msg, aerr := wire.DecodeAPIError(b); aerr == nil && printable(msg) {
				return fmt.Errorf("tap server error: %s", msg)
			}
			if err != nil {
				// A corrupt frame desynchronizes the stream: reopen it.
				return fmt.Errorf("at byte offset %d: %w", fr.Offset(), err)
			}
			continue
		}
		// An http event of no kind tapgate knows: nothing to count.
	}
}

// printable reports whether s looks like an error message rather than the
// bytes of some other message that happened to decode as an ApiError.
func printable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) && r != '\t' {
			return false
		}
	}
	return true
}

// watchPods lists target i's pods every PodPoll while ctx lasts and sends a
// description on the returned channel whenever the set of tappable pods
// differs from the one the current tap was opened with. Lookup failures
// are ignored: the tap itself reports what matters.
func (s *Source) watchPods(ctx context.Context, i int, initial []string) <-chan string {
	ch := make(chan string, 1)
	go func() {
		cur := initial
		t := time.NewTicker(s.opts.PodPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r, err := Resolve(ctx, s.cs, s.targets[i], s.ns)
			if err != nil || slices.Equal(r.TappableNames, cur) {
				continue
			}
			added, removed := diff(cur, r.TappableNames)
			msg := fmt.Sprintf("pods of %s changed: %d new (%s), %d gone (%s)", s.streams[i].label,
				len(added), strings.Join(added, ", "), len(removed), strings.Join(removed, ", "))
			select {
			case ch <- msg:
				cur = r.TappableNames
			case <-ctx.Done():
				return
			default:
				// A change is already pending; it will re-open with the
				// newest pods anyway. Report this one next time.
			}
		}
	}()
	return ch
}

// diff returns the names in b but not a, and in a but not b (both sorted).
func diff(a, b []string) (added, removed []string) {
	for _, n := range b {
		if _, ok := slices.BinarySearch(a, n); !ok {
			added = append(added, n)
		}
	}
	for _, n := range a {
		if _, ok := slices.BinarySearch(b, n); !ok {
			removed = append(removed, n)
		}
	}
	return added, removed
}

// noteSilent explains a target whose open tap carried no event at all.
// Linkerd's tap has no heartbeat, so silence alone cannot tell an idle
// workload from a dead connection; the transport's keepalive can. Over
// HTTP/2 client-go pings an idle connection (HTTP2_READ_IDLE_TIMEOUT_SECONDS,
// tapgate sets 10s unless given) and drops it when a ping goes unanswered
// (HTTP2_PING_TIMEOUT_SECONDS, 5s), which breaks the stream and is reported
// as a reconnect; a stream that stayed open therefore was alive and idle.
func (s *Source) noteSilent(n gate.Noter, i int, opened bool) {
	if !opened || s.events[i].Load() > 0 {
		return
	}
	proto, _ := s.proto[i].Load().(string)
	how := "its TCP connection stayed up (TCP keepalive)"
	if strings.HasPrefix(proto, "HTTP/2") {
		how = "its HTTP/2 connection answered keepalive pings"
	}
	s.note(n, i, "the tap stream of %s was open and %s, but carried no events: no requests that tap can see reached its pods (an idle workload, not a dead connection)", s.streams[i].label, how)
}
