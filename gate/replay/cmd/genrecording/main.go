// Command genrecording writes a deterministic, realistic tap recording for
// examples and tests: inbound traffic of deployment checkout (3 pods, healthy)
// and checkout-canary (1 pod, failing) in namespace shop.
//
//	go run ./gate/replay/cmd/genrecording -o examples/recordings/checkout.json.gz
//
// The same seed always gives the same bytes. Secret headers (the
// authorization header every request carries) are redacted on write.
package main

import (
	"bufio"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/tapgate/tapgate/gate"
	"github.com/tapgate/tapgate/gate/replay"
)

type config struct {
	out        string
	seed       uint64
	duration   time.Duration
	rps        float64
	timestamps bool
	start      time.Time
}

func main() {
	var c config
	var start string
	flag.StringVar(&c.out, "o", "-", "output file (\"-\" for stdout); a .gz suffix compresses it")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed; the same seed writes the same bytes")
	flag.DurationVar(&c.duration, "duration", 70*time.Second, "length of the recorded traffic")
	flag.Float64Var(&c.rps, "rps", 40, "total requests per second over all pods")
	flag.BoolVar(&c.timestamps, "timestamps", true, "add arrival timestamps (false: plain linkerd shape)")
	flag.StringVar(&start, "start", "2026-11-28T14:00:00Z", "wall-clock time of the first event (RFC 3339)")
	flag.Parse()
	t, err := time.Parse(time.RFC3339, start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "genrecording: -start: %v\n", err)
		os.Exit(2)
	}
	c.start = t
	if err := run(c); err != nil {
		fmt.Fprintf(os.Stderr, "genrecording: %v\n", err)
		os.Exit(1)
	}
}

func run(c config) (err error) {
	var w io.Writer = os.Stdout
	if c.out != "-" {
		f, err := os.Create(c.out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	bw := bufio.NewWriter(w)
	w = bw
	var zw *gzip.Writer
	if strings.HasSuffix(c.out, ".gz") {
		zw, _ = gzip.NewWriterLevel(bw, gzip.BestCompression)
		w = zw
	}
	events := generate(c)
	rw := replay.NewWriter(w, gate.NewRedactor())
	for _, te := range events {
		var at time.Time
		if c.timestamps {
			at = c.start.Add(te.at)
		}
		if err := rw.Write(&te.ev, at); err != nil {
			return err
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

type pod struct {
	name, hash, deployment, sa string
	addr                       netip.Addr
	labels                     map[string]string
	canary                     bool
	base                       uint32
	stream                     uint64
}

func newPod(deploy, hash, suffix, ip string, canary bool, base uint32) *pod {
	p := &pod{
		name:       deploy + "-" + hash + "-" + suffix,
		hash:       hash,
		deployment: deploy,
		sa:         strings.TrimSuffix(deploy, "-canary"),
		addr:       netip.MustParseAddr(ip),
		canary:     canary,
		base:       base,
	}
	p.labels = map[string]string{
		"control_plane_ns":  "linkerd",
		"deployment":        deploy,
		"namespace":         "shop",
		"pod":               p.name,
		"pod_template_hash": hash,
		"serviceaccount":    p.sa,
	}
	return p
}

type timed struct {
	at  time.Duration
	seq int // keeps the sort stable and deterministic
	ev  gate.Event
}

type route struct {
	method, path string
	grpc         bool
	weight       float64
	bytes        int
}

var routes = []route{
	{"GET", "/api/v1/checkout/quote", false, 0.45, 560},
	{"POST", "/api/v1/checkout", false, 0.35, 1240},
	{"POST", "/shop.checkout.v1.CheckoutService/PlaceOrder", true, 0.20, 180},
}

func generate(c config) []timed {
	rng := rand.New(rand.NewPCG(c.seed, 0x7a9))
	servers := []*pod{
		newPod("checkout", "7d9f8b6c5", "x2k4q", "10.42.1.11", false, 3),
		newPod("checkout", "7d9f8b6c5", "m8p3z", "10.42.2.17", false, 5),
		newPod("checkout", "7d9f8b6c5", "t6w9n", "10.42.3.23", false, 2),
		newPod("checkout-canary", "5c6b7f9d4", "q7r2s", "10.42.1.40", true, 1),
	}
	clients := []*pod{
		newPod("frontend", "6f8d9c7b5", "a1b2c", "10.42.2.30", false, 0),
		newPod("frontend", "6f8d9c7b5", "d3e4f", "10.42.3.31", false, 0),
		newPod("api-gateway", "84c5d6f7b", "k9l8m", "10.42.1.52", false, 0),
	}
	for _, cl := range clients {
		cl.labels["tls"] = "true"
	}
	var out []timed
	seq := 0
	add := func(at time.Duration, ev gate.Event) {
		if at < c.duration {
			out = append(out, timed{at: at, seq: seq, ev: ev})
			seq++
		}
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	tapDelay := func() time.Duration { return ms(0.3 + rng.Float64()*2) }

	var t time.Duration
	for {
		t += time.Duration(rng.ExpFloat64() / c.rps * float64(time.Second))
		if t >= c.duration {
			break
		}
		srv := servers[rng.IntN(len(servers))]
		cl := clients[rng.IntN(len(clients))]
		rt := pickRoute(rng)
		srv.stream++
		id := gate.StreamID{Base: srv.base, Stream: srv.stream}
		common := gate.Event{
			Direction:   gate.Inbound,
			ID:          id,
			Source:      gate.Endpoint{Addr: netip.AddrPortFrom(cl.addr, uint16(32768+rng.IntN(28000))), Labels: cl.labels},
			Destination: gate.Endpoint{Addr: netip.AddrPortFrom(srv.addr, 8080), Labels: srv.labels},
		}

		req := common
		req.Kind = gate.RequestInit
		req.Method, req.Scheme, req.Path = rt.method, "HTTP", rt.path
		req.Authority = "checkout.shop.svc.cluster.local:8080"
		req.Headers = requestHeaders(rng, cl, rt)
		// One delay per request: a proxy reports a stream's events to the
		// tap in order, so a recording never has a response before its
		// request or an end before its headers.
		delay := tapDelay()
		add(t+delay, req)

		// Latency to response headers: lognormal from p50 and p99.
		p50, p99 := 25.0, 120.0
		if srv.canary {
			p50, p99 = 32.0, 900.0
		}
		sigma := math.Log(p99/p50) / 2.326
		lat := ms(p50 * math.Exp(sigma*rng.NormFloat64()))
		body := ms(0.2 + rng.ExpFloat64()*1.5)

		if srv.canary && rng.Float64() < 0.006 {
			// The stream is reset before any response: no ResponseInit.
			end := common
			end.Kind = gate.ResponseEnd
			end.SinceRequestInit = lat
			end.EOS = gate.EOS{Kind: gate.EOSReset, Code: 2} // INTERNAL_ERROR
			add(t+lat+delay, end)
			continue
		}

		status, grpcCode := uint32(200), uint32(0)
		failRate := 0.002
		if srv.canary {
			failRate = 0.06
		}
		if rt.grpc {
			if rng.Float64() < failRate*1.4 {
				grpcCode = 14 // UNAVAILABLE
			}
		} else if rng.Float64() < failRate {
			status = []uint32{500, 502, 503}[rng.IntN(3)]
		} else if rng.Float64() < 0.01 {
			status = 404
		}
		rsp := common
		rsp.Kind = gate.ResponseInit
		rsp.SinceRequestInit = lat
		rsp.HTTPStatus = status
		rsp.Headers = responseHeaders(rt)
		add(t+lat+delay, rsp)

		end := common
		end.Kind = gate.ResponseEnd
		end.SinceRequestInit = lat + body
		end.SinceResponseInit = body
		end.ResponseBytes = uint64(float64(rt.bytes) * (0.8 + 0.4*rng.Float64()))
		if status >= 500 {
			end.ResponseBytes = 96
		}
		if rt.grpc {
			end.EOS = gate.EOS{Kind: gate.EOSGRPCStatus, Code: grpcCode}
			end.Trailers = []gate.Header{{Name: "grpc-status", Value: fmt.Sprint(grpcCode)}}
			if grpcCode != 0 {
				end.ResponseBytes = 0
				end.Trailers = append(end.Trailers, gate.Header{Name: "grpc-message", Value: "upstream connect error: payments unavailable"})
			}
		}
		add(t+lat+body+delay, end)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].at != out[j].at {
			return out[i].at < out[j].at
		}
		return out[i].seq < out[j].seq
	})
	return out
}

func pickRoute(rng *rand.Rand) route {
	x := rng.Float64()
	for _, r := range routes {
		if x < r.weight {
			return r
		}
		x -= r.weight
	}
	return routes[len(routes)-1]
}

func requestHeaders(rng *rand.Rand, cl *pod, rt route) []gate.Header {
	hs := []gate.Header{
		{Name: "user-agent", Value: cl.deployment + "/2.14.1"},
		// A real bearer token shape; the writer redacts it.
		{Name: "authorization", Value: fmt.Sprintf("Bearer eyJhbGciOiJSUzI1NiJ9.%016x", rng.Uint64())},
		{Name: "x-request-id", Value: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())},
	}
	switch {
	case rt.grpc:
		hs = append(hs,
			gate.Header{Name: "content-type", Value: "application/grpc"},
			gate.Header{Name: "te", Value: "trailers"},
			gate.Header{Name: "grpc-timeout", Value: "2S"})
	case rt.method == "POST":
		hs = append(hs,
			gate.Header{Name: "content-type", Value: "application/json"},
			gate.Header{Name: "accept", Value: "application/json"})
	default:
		hs = append(hs, gate.Header{Name: "accept", Value: "application/json"})
	}
	return hs
}

func responseHeaders(rt route) []gate.Header {
	if rt.grpc {
		return []gate.Header{{Name: "content-type", Value: "application/grpc"}}
	}
	return []gate.Header{{Name: "content-type", Value: "application/json"}}
}
