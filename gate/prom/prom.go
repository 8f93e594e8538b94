// Package prom reads what a target's Linkerd proxies counted themselves
// (response_total and response_latency_ms_bucket: every request, not only
// the tapped sample) from Prometheus, for the gate's cross-check
// (gate.ProxyCounts). By default it reads linkerd-viz's Prometheus through
// the Kubernetes apiserver's service proxy, with the kubeconfig's
// credentials and RBAC and no port-forward; with a URL, any Prometheus HTTP
// API (Prometheus, a Thanos querier, Mimir).
package prom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"

	"github.com/tapgate/tapgate/gate"
)

// Defaults: linkerd-viz's Prometheus Service (viz/charts/linkerd-viz:
// Service prometheus, port 9090 named admin) and its scrape interval.
const (
	DefaultNamespace      = "linkerd-viz"
	DefaultService        = "prometheus"
	DefaultPort           = 9090
	DefaultScrapeInterval = 10 * time.Second
	DefaultTimeout        = 30 * time.Second
)

// Config says where Prometheus is and how long to wait for it.
type Config struct {
	// URL is a Prometheus HTTP API base URL (the one under which
	// /api/v1/query is served). When it is empty, Kube is used.
	URL string
	// HTTPClient, optional, sends the requests to URL (custom TLS,
	// headers such as Mimir's X-Scope-OrgID).
	HTTPClient *http.Client

	// Kube reaches Prometheus through the apiserver's service proxy:
	// {host}/api/v1/namespaces/{Namespace}/services/http:{Service}:{Port}/proxy,
	// with Kube's transport. Defaults: linkerd-viz, prometheus, 9090.
	Kube      *rest.Config
	Namespace string
	Service   string
	Port      int

	// ScrapeInterval is used where it cannot be read from the samples
	// (a series with a single sample). Default 10s, linkerd-viz's.
	ScrapeInterval time.Duration
	// Wait bounds how long Counts waits for Prometheus to scrape every
	// live series past the window's end. Zero: two scrape intervals (as
	// measured on the samples); negative: no wait.
	Wait time.Duration
	// Timeout bounds each HTTP request; default 30s.
	Timeout time.Duration
	// Classification, when set, classifies the proxies' responses as the
	// policy does (from their status labels); nil keeps Linkerd's own
	// classification label.
	Classification *gate.Classification
}

// ConfigFor is the configuration a policy's cross-check asks for, with
// cc its cross-check settings (the policy's, perhaps overridden by flags);
// kube is used when they name no URL.
func ConfigFor(p *gate.Policy, cc gate.CrossCheckPolicy, kube *rest.Config) Config {
	cls := p.Classification
	return Config{URL: cc.URL, Kube: kube, Namespace: cc.Namespace, Service: cc.Service, Port: cc.Port, Classification: &cls}
}

// Client reads the proxies' counters. It is safe for concurrent use.
type Client struct {
	api      v1.API
	place    place
	source   string
	interval time.Duration
	wait     time.Duration
	timeout  time.Duration
	classify *gate.Classification
}

// New builds a client; it does not contact Prometheus (see Check).
func New(cfg Config) (*Client, error) {
	c := &Client{interval: cfg.ScrapeInterval, wait: cfg.Wait, timeout: cfg.Timeout, classify: cfg.Classification}
	if c.interval <= 0 {
		c.interval = DefaultScrapeInterval
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	var ac api.Config
	switch {
	case cfg.URL != "":
		u, err := url.Parse(cfg.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("prometheus URL %q is not an http(s) URL, e.g. http://prometheus.monitoring:9090", cfg.URL)
		}
		c.place = place{url: u.Redacted()}
		c.source = "Prometheus at " + c.place.url
		ac = api.Config{Address: cfg.URL, Client: cfg.HTTPClient}
	case cfg.Kube != nil:
		p := place{kube: true, namespace: cfg.Namespace, service: cfg.Service, port: cfg.Port}
		if p.namespace == "" {
			p.namespace = DefaultNamespace
		}
		if p.service == "" {
			p.service = DefaultService
		}
		if p.port == 0 {
			p.port = DefaultPort
		}
		host, _, err := rest.DefaultServerUrlFor(cfg.Kube)
		if err != nil {
			return nil, fmt.Errorf("prometheus through the apiserver: %w", err)
		}
		hc, err := rest.HTTPClientFor(cfg.Kube)
		if err != nil {
			return nil, fmt.Errorf("prometheus through the apiserver: %w", err)
		}
		p.url = host.Redacted()
		c.place = p
		c.source = fmt.Sprintf("Prometheus %s/%s:%d through the apiserver's service proxy", p.namespace, p.service, p.port)
		base := host.JoinPath("api/v1/namespaces", p.namespace, "services", p.proxyName(), "proxy")
		ac = api.Config{Address: base.String(), Client: hc}
	default:
		return nil, errors.New("prometheus: neither a URL nor a Kubernetes configuration")
	}
	hc, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	c.api = v1.NewAPI(getClient{Client: hc, place: c.place})
	return c, nil
}

// Source says where the counts come from, for reports.
func (c *Client) Source() string { return c.source }

// Check is a quick reachability check (one trivial query), for a policy
// that requires the cross-check before it taps; it returns an *Error.
func (c *Client) Check(ctx context.Context) error {
	_, _, err := c.query(ctx, "vector(1)", time.Now())
	return err
}

// query runs one instant query; errors are *Error, or ctx's own.
func (c *Client) query(ctx context.Context, q string, at time.Time) (model.Value, v1.Warnings, error) {
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, warnings, _, err := c.api.Query(qctx, q, at)
	if err == nil {
		return v, warnings, nil
	}
	if ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	var e *Error
	var ve *v1.Error
	switch {
	case errors.As(err, &e):
		cp := *e
		e = &cp
	case errors.As(err, &ve):
		e = c.place.apiError(ve)
	default:
		e = &Error{Kind: BadResponse, Msg: fmt.Sprintf("reading %s: %v", c.place, err), Err: err}
	}
	if e.Kind == QueryFailed || e.Kind == BadResponse {
		e.Query = q
	}
	return nil, nil, e
}

// getClient is the api.Client the v1 API talks through. It sends every
// query as a GET: the v1 client POSTs first, and through the service proxy
// a POST is authorized as create on services/proxy where a GET needs only
// get. It turns every non-2xx answer into an *Error, and returns no
// response with it, so that the v1 client does not retry.
type getClient struct {
	api.Client
	place place
}

func (g getClient) Do(ctx context.Context, req *http.Request) (*http.Response, []byte, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		form, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, nil, err
		}
		u := *req.URL
		u.RawQuery = strings.Trim(u.RawQuery+"&"+string(form), "&")
		get, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, nil, err
		}
		req = get
	}
	resp, body, err := g.Client.Do(ctx, req)
	if err != nil {
		return nil, nil, g.place.transportError(err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, nil, g.place.statusError(resp.StatusCode, body)
	}
	return resp, body, nil
}
