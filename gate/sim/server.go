package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/tapgate/tapgate/gate/tap/pb"
	"github.com/tapgate/tapgate/gate/tap/wire"
)

const (
	group        = "tap.linkerd.io"
	groupVersion = "tap.linkerd.io/v1alpha1"
	errorHeader  = "linkerd-error"
	viaHeader    = "1.1 linkerd" // recent Linkerd sets Via on every tap response
	maxBody      = 1 << 20
)

// tapResources are the resources Linkerd's tap APIService declares.
var tapResources = []struct {
	name, short string
	namespaced  bool
}{
	{"namespaces", "ns", false},
	{"pods", "po", true},
	{"replicationcontrollers", "rc", true},
	{"services", "svc", true},
	{"daemonsets", "ds", true},
	{"deployments", "deploy", true},
	{"replicasets", "rs", true},
	{"statefulsets", "sts", true},
	{"jobs", "", true},
	{"cronjobs", "cj", true},
}

// TapRequestInfo is what the simulator saw of one tap request.
type TapRequestInfo struct {
	Method string
	Path   string
	// User and Groups are the X-Remote-User / X-Remote-Group headers the
	// aggregator sets for the authenticated caller.
	User   string
	Groups []string
	// Target is "type/name" from the body; Namespace its namespace.
	Target    string
	Namespace string
	MaxRps    float32
	Pods      []string // pods being tapped
	// HTTPStatus is the status sent; Error the ApiError or JSON error text.
	HTTPStatus int
	Error      string
	// Start is the simulated time the stream started.
	Start time.Duration
	// Events were written to the stream; Dropped were lost to a full buffer.
	Events  uint64
	Dropped uint64
}

// TapRequests returns every tap request received so far, in order.
func (s *Simulator) TapRequests() []TapRequestInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TapRequestInfo, len(s.tapReqs))
	copy(out, s.tapReqs)
	for _, subs := range s.subs {
		for _, sub := range subs {
			out[sub.info].Events = sub.sent.Load()
			out[sub.info].Dropped = sub.dropped.Load()
		}
	}
	return out
}

// Handler serves Linkerd's tap APIServer routes: discovery, health and the
// tap watch endpoints.
func (s *Simulator) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

func (s *Simulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if r.Method == http.MethodGet {
		switch p {
		case "/":
			renderPaths(w, http.StatusOK)
			return
		case "/apis":
			renderJSON(w, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList"}, Groups: []metav1.APIGroup{apiGroup()}}, http.StatusOK)
			return
		case "/apis/" + group:
			g := apiGroup()
			g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
			renderJSON(w, g, http.StatusOK)
			return
		case "/apis/" + groupVersion:
			renderJSON(w, apiResourceList(), http.StatusOK)
			return
		case "/healthz", "/healthz/log", "/healthz/ping":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
			return
		case "/version":
			renderJSON(w, version.Info{}, http.StatusOK)
			return
		case "/metrics":
			// Every simulated proxy's request metrics, as Linkerd's
			// Prometheus would hold them (metrics.go).
			s.metrics.ServeHTTP(w, r)
			return
		case "/openapi/v2":
			renderJSON(w, map[string]any{"swagger": "2.0", "info": map[string]string{"title": "Api", "version": "v0"}}, http.StatusOK)
			return
		}
	}
	// /apis/tap.linkerd.io/v1alpha1/watch/namespaces/{ns}[/tap]
	// /apis/tap.linkerd.io/v1alpha1/watch/namespaces/{ns}/{resource}/{name}[/tap]
	segs := strings.Split(p, "/")
	if len(segs) >= 7 && segs[1] == "apis" && segs[2] == group && segs[3] == "v1alpha1" &&
		segs[4] == "watch" && segs[5] == "namespaces" && segs[6] != "" {
		switch {
		case len(segs) == 7 && r.Method == http.MethodGet:
			renderPaths(w, http.StatusOK)
			return
		case len(segs) == 8 && segs[7] == "tap" && r.Method == http.MethodPost:
			s.handleTap(w, r, "namespaces")
			return
		case (len(segs) == 9 || len(segs) == 10 && segs[9] == "tap") && namespacedResource(segs[7]) && segs[8] != "":
			if len(segs) == 9 && r.Method == http.MethodGet {
				renderPaths(w, http.StatusOK)
				return
			}
			if len(segs) == 10 && r.Method == http.MethodPost {
				s.handleTap(w, r, segs[7])
				return
			}
		}
	}
	renderPaths(w, http.StatusNotFound)
}

func namespacedResource(name string) bool {
	for _, r := range tapResources {
		if r.namespaced && r.name == name {
			return true
		}
	}
	return false
}

func apiGroup() metav1.APIGroup {
	gv := metav1.GroupVersionForDiscovery{GroupVersion: groupVersion, Version: "v1alpha1"}
	return metav1.APIGroup{Name: group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}
}

func apiResourceList() metav1.APIResourceList {
	l := metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: groupVersion,
		APIResources: []metav1.APIResource{},
	}
	for _, r := range tapResources {
		l.APIResources = append(l.APIResources,
			metav1.APIResource{Name: r.name, ShortNames: []string{r.short}, Namespaced: r.namespaced, Kind: "Tap", Verbs: metav1.Verbs{"watch"}},
			metav1.APIResource{Name: r.name + "/tap", Namespaced: r.namespaced, Kind: "Tap", Verbs: metav1.Verbs{"watch"}})
	}
	return l
}

func renderPaths(w http.ResponseWriter, status int) {
	renderJSON(w, map[string][]string{"paths": {
		"/apis", "/apis/" + group, "/apis/" + groupVersion,
		"/healthz", "/healthz/log", "/healthz/ping", "/metrics", "/openapi/v2", "/version",
	}}, status)
}

func renderJSON(w http.ResponseWriter, v any, status int) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		renderJSONError(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func renderJSONError(w http.ResponseWriter, msg string, status int) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeAPIError answers like Linkerd's protohttp.WriteErrorToHTTPResponse:
// the linkerd-error header holds the status text of the would-be status
// (Bad Request for an undecodable body, else Internal Server Error), the
// HTTP status stays 200, and the body is one ApiError frame.
func writeAPIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Via", viaHeader)
	w.Header().Set(errorHeader, http.StatusText(status))
	w.Header().Set("Content-Type", "application/octet-stream")
	_ = wire.WriteFrame(w, &pb.ApiError{Error: msg})
}

// tapURL is Linkerd's TapReqToURL: the path the body's target must match.
func tapURL(req *pb.TapByResourceRequest) string {
	res := req.GetTarget().GetResource()
	if res.GetType() == wire.TypeNamespace {
		return fmt.Sprintf("/apis/tap.linkerd.io/v1alpha1/watch/namespaces/%s/tap", res.GetName())
	}
	return fmt.Sprintf("/apis/tap.linkerd.io/v1alpha1/watch/namespaces/%s/%s/%s/tap",
		res.GetNamespace(), res.GetType()+"s", res.GetName())
}

func (s *Simulator) record(info TapRequestInfo) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tapReqs = append(s.tapReqs, info)
	return len(s.tapReqs) - 1
}

func (s *Simulator) update(i int, fn func(*TapRequestInfo)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.tapReqs[i])
}

func (s *Simulator) handleTap(w http.ResponseWriter, r *http.Request, resource string) {
	idx := s.record(TapRequestInfo{
		Method: r.Method, Path: r.URL.Path,
		User: r.Header.Get("X-Remote-User"), Groups: r.Header.Values("X-Remote-Group"),
		HTTPStatus: http.StatusOK,
	})
	fail := func(status int, msg string) {
		s.update(idx, func(t *TapRequestInfo) { t.Error = msg })
		writeAPIError(w, status, msg)
	}
	f := s.faultsForRequest()
	if f.fail != nil {
		s.update(idx, func(t *TapRequestInfo) { t.HTTPStatus, t.Error = f.fail.status, f.fail.body })
		if strings.HasPrefix(strings.TrimSpace(f.fail.body), "{") {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(f.fail.status)
		_, _ = io.WriteString(w, f.fail.body)
		return
	}
	if user := r.Header.Get("X-Remote-User"); f.denied(user) {
		msg := fmt.Sprintf("tap authorization failed (not authorized to access %s.%s), visit https://linkerd.io/tap-rbac for more information", resource, group)
		s.update(idx, func(t *TapRequestInfo) { t.HTTPStatus, t.Error = http.StatusForbidden, msg })
		renderJSONError(w, msg, http.StatusForbidden)
		return
	}

	var req pb.TapByResourceRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("request body larger than %d bytes", maxBody)
	}
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		// Linkerd wraps this as "Error decoding Tap Request proto: ..." but
		// its error writer unwraps the HTTPError inside, so only the decode
		// error itself reaches the client.
		fail(http.StatusBadRequest, err.Error())
		return
	}
	res := req.GetTarget().GetResource()
	s.update(idx, func(t *TapRequestInfo) {
		t.Target, t.Namespace, t.MaxRps = res.GetType()+"/"+res.GetName(), res.GetNamespace(), req.GetMaxRps()
	})
	if u := tapURL(&req); u != r.URL.Path {
		fail(http.StatusInternalServerError, fmt.Sprintf("tap request body did not match APIServer URL: %q != %q", u, r.URL.Path))
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		fail(http.StatusInternalServerError, "streaming not supported by this writer")
		return
	}

	// TapByResource, in Linkerd's order of checks.
	if req.GetTarget() == nil {
		fail(http.StatusInternalServerError, "TapByResource received nil target ResourceSelection")
		return
	}
	if res == nil {
		fail(http.StatusInternalServerError, "TapByResource received nil target Resource")
		return
	}
	pods, err := s.resolvePods(res, req.GetTarget().GetLabelSelector())
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	m, err := buildMatcher(req.GetMatch())
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	limit := perPodLimit(req.GetMaxRps(), len(pods))
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.name
	}
	s.update(idx, func(t *TapRequestInfo) { t.Pods = names })

	select {
	case <-s.ended:
		// The simulation is over: the stream ends at once, empty.
		w.Header().Set("Content-Type", "application/octet-stream")
		return
	default:
	}
	sub := s.subscribe(pods, limit, m, req.GetExtract().GetHttp().GetHeaders() != nil, idx)
	defer s.unsubscribe(sub)
	w.Header().Set("Via", viaHeader)
	w.Header().Set("Content-Type", "application/octet-stream")

	var cut <-chan time.Time
	if f.cutAfter > 0 {
		t := time.NewTimer(f.cutAfter)
		defer t.Stop()
		cut = t.C
	}
	write := func(frame []byte) bool {
		if _, err := w.Write(frame); err != nil {
			return false
		}
		// Flush per event like Linkerd, except while more events are
		// already queued (fast-forward backlog): the data still leaves
		// before the handler waits again.
		if len(sub.ch) == 0 || f.cutEvents > 0 || f.errAfter > 0 {
			flusher.Flush()
		}
		n := sub.sent.Add(1)
		if f.cutEvents > 0 && n >= uint64(f.cutEvents) {
			// Abort the connection: the client sees the stream break.
			panic(http.ErrAbortHandler)
		}
		if f.errAfter > 0 && n >= uint64(f.errAfter) {
			_ = wire.WriteFrame(w, &pb.ApiError{Error: f.errMsg})
			flusher.Flush()
			return false
		}
		return true
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-cut:
			panic(http.ErrAbortHandler)
		case frame := <-sub.ch:
			if !write(frame) {
				return
			}
		case <-s.ended:
			for {
				select {
				case frame := <-sub.ch:
					if !write(frame) {
						return
					}
				default:
					return
				}
			}
		}
	}
}

// ServeOptions configure Serve.
type ServeOptions struct {
	// Addr to listen on; default 127.0.0.1:0.
	Addr string
	// TLS serves HTTPS with a certificate from a freshly generated CA,
	// whose PEM Serve returns (put it in the APIService's caBundle).
	TLS bool
	// Hosts are extra names for the certificate (the APIService's service
	// DNS name); 127.0.0.1, ::1 and localhost are always included.
	Hosts []string
	// ClientCAs, when set, requires and verifies client certificates, as
	// the tap server does for the aggregator's front-proxy certificate.
	ClientCAs *x509.CertPool
	// TLSConfig, when set, serves HTTPS with it as given (TLS, Hosts and
	// ClientCAs are ignored and no CA is returned), e.g. an e2e harness's
	// backend configuration.
	TLSConfig *tls.Config
}

// Serve listens and serves Handler in the background until ctx is done.
// It returns the listening address and, with TLS, the CA certificate.
func (s *Simulator) Serve(ctx context.Context, o ServeOptions) (addr string, caPEM []byte, err error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	switch {
	case o.TLSConfig != nil:
		o.TLS = true
		srv.TLSConfig = o.TLSConfig.Clone()
		if len(srv.TLSConfig.NextProtos) == 0 {
			srv.TLSConfig.NextProtos = []string{"h2", "http/1.1"}
		}
	case o.TLS:
		cert, ca, err := selfSigned(o.Hosts)
		if err != nil {
			ln.Close()
			return "", nil, err
		}
		caPEM = ca
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		if o.ClientCAs != nil {
			srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
			srv.TLSConfig.ClientCAs = o.ClientCAs
		}
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		var err error
		if o.TLS {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		_ = err // http.ErrServerClosed after ctx is done; nothing to report to.
	}()
	return ln.Addr().String(), caPEM, nil
}

// selfSigned makes a CA and a serving certificate signed by it.
func selfSigned(hosts []string) (tls.Certificate, []byte, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tapgate-sim-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "tap.linkerd-viz.svc"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "tap.linkerd-viz.svc", "tap.linkerd-viz.svc.cluster.local"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: nil}, caPEM, nil
}
