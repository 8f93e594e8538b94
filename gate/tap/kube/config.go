// Package kube is tapgate's live source: it taps workloads through Linkerd's
// viz tap, which is only exposed as the Kubernetes aggregated API
// tap.linkerd.io/v1alpha1, exactly as `linkerd viz tap` does.
package kube

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ClientOptions are the usual kubectl connection flags.
type ClientOptions struct {
	Kubeconfig string // --kubeconfig; empty: $KUBECONFIG, ~/.kube/config, in-cluster
	Context    string // --context
	Namespace  string // -n / --namespace
}

// LoadConfig resolves the REST config and the default namespace the way
// kubectl does: --kubeconfig, else $KUBECONFIG, else ~/.kube/config, else the
// in-cluster ServiceAccount; the namespace is -n, else the context's, else
// the pod's own namespace in-cluster, else "default".
func LoadConfig(o ClientOptions) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	if o.Namespace != "" {
		overrides.Context.Namespace = o.Namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", fmt.Errorf("no Kubernetes configuration: set --kubeconfig or KUBECONFIG, or run in a pod with a ServiceAccount: %w", err)
		}
		return nil, "", fmt.Errorf("loading Kubernetes configuration: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", fmt.Errorf("resolving the default namespace: %w", err)
	}
	if ns == "" {
		ns = "default"
	}
	return cfg, ns, nil
}
