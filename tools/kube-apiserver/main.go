// Command kube-apiserver is an unmodified build of the upstream kube-apiserver
// (k8s.io/kubernetes/cmd/kube-apiserver), pinned by this module's go.mod, for
// tapgate's end-to-end tests. It exists as a separate module so the main
// module never depends on k8s.io/kubernetes.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob, as upstream

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
