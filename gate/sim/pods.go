package sim

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
)

// PodInfo describes one simulated pod.
type PodInfo struct {
	Namespace string
	// Owner is the workload ("deployment/checkout").
	Owner string
	Name  string
	IP    netip.Addr
	// Labels are the pod's Kubernetes labels (what label selectors see).
	Labels     map[string]string
	Meshed     bool
	TapEnabled bool
}

// Pods lists the simulated pods in scenario order.
func (s *Simulator) Pods() []PodInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PodInfo, 0, len(s.m.pods))
	for _, p := range s.m.pods {
		out = append(out, PodInfo{
			Namespace: p.dep.ns, Owner: p.dep.kind + "/" + p.dep.name, Name: p.name, IP: p.addr,
			Labels: maps.Clone(p.labels), Meshed: p.dep.meshed, TapEnabled: p.dep.tap,
		})
	}
	return out
}

// PodIdentity is how a real cluster knows a pod the simulator plays.
type PodIdentity struct {
	Name string
	IP   netip.Addr
}

// AdoptPods gives the pods of workload ns/name the names and IPs a real
// cluster assigned (e.g. an e2e apiserver's fixture pods), so events and
// tap targets agree with what tapgate resolves there. templateHash, when
// not empty, replaces the deployment's pod-template-hash. It must be
// called before the clock starts (Run, after StartAfterTaps streams) and
// before any tap request, with exactly as many pods
// as the scenario declares.
func (s *Simulator) AdoptPods(ns, name, templateHash string, pods []PodIdentity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("sim: AdoptPods after the simulation clock started")
	}
	for _, d := range s.m.deps {
		if d.ns != ns || d.name != name {
			continue
		}
		if len(pods) != len(d.pods) {
			return fmt.Errorf("sim: %s/%s has %d pods in the scenario, %d given", ns, name, len(d.pods), len(pods))
		}
		if templateHash != "" && d.kind == "deployment" {
			d.hash = templateHash
		}
		for i, p := range d.pods {
			if !pods[i].IP.Is4() {
				return fmt.Errorf("sim: pod %s: only IPv4 addresses are supported, got %v", pods[i].Name, pods[i].IP)
			}
			p.name, p.addr = pods[i].Name, pods[i].IP
			p.meta["pod"] = p.name
			if d.kind == "deployment" {
				p.labels["pod-template-hash"] = d.hash
				p.meta["pod_template_hash"] = d.hash
				p.meta["replicaset"] = d.name + "-" + d.hash
			}
			p.buildMeta()
		}
		s.prom.reset(s.m) // label sets name the adopted pods
		return nil
	}
	return fmt.Errorf("sim: no workload %s/%s in the scenario", ns, name)
}
