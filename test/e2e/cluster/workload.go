package cluster

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Linkerd's markers on meshed pods, as the proxy injector writes them (the
// tap server only taps pods whose control-plane-ns label names its control
// plane).
const (
	LinkerdNamespace    = "linkerd"
	LinkerdProxyVersion = "edge-25.1.1"
	ProxyContainerName  = "linkerd-proxy"
	// NodeName is the (nonexistent) node every fixture pod is bound to.
	NodeName = "tapgate-e2e-node"
)

// Workload is what CreateWorkload wrote, as the apiserver returned it.
type Workload struct {
	Deployment *appsv1.Deployment
	ReplicaSet *appsv1.ReplicaSet
	Pods       []*corev1.Pod
}

// CreateWorkload writes a Deployment ns/name, a ReplicaSet owned by it and
// `pods` Running pods owned by the ReplicaSet, each with its own loopback IP
// (127.0.x.y, unique within the cluster) as Linkerd's tap server sees a real
// workload. labels are added to the pod template (app=name is always set).
// meshed adds the linkerd-proxy container and Linkerd's labels and
// annotations. The namespace is created if missing. Nothing reconciles these
// objects: no controller runs.
func (c *Cluster) CreateWorkload(t testing.TB, ns, name string, pods int, labels map[string]string, meshed bool) *Workload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), registrationTimeout)
	defer cancel()
	cs := c.Clientset(t, UserAdmin)
	c.ensureNamespace(t, cs, ns)

	hash := podTemplateHash(name)
	podLabels := map[string]string{"app": name}
	maps.Copy(podLabels, labels)
	annotations := map[string]string{}
	containers := []corev1.Container{{
		Name:  "app",
		Image: "registry.example/" + name + ":e2e",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
	}}
	if meshed {
		podLabels["linkerd.io/control-plane-ns"] = LinkerdNamespace
		podLabels["linkerd.io/proxy-deployment"] = name
		podLabels["linkerd.io/workload-ns"] = ns
		annotations["linkerd.io/proxy-version"] = LinkerdProxyVersion
		annotations["linkerd.io/created-by"] = "linkerd/proxy-injector " + LinkerdProxyVersion
		annotations["linkerd.io/inject"] = "enabled"
		annotations["linkerd.io/identity-mode"] = "default"
		containers = append([]corev1.Container{{
			Name:  ProxyContainerName,
			Image: "cr.l5d.io/linkerd/proxy:" + LinkerdProxyVersion,
			Ports: []corev1.ContainerPort{
				{Name: "linkerd-proxy", ContainerPort: 4143},
				{Name: "linkerd-admin", ContainerPort: 4191},
			},
		}}, containers...)
	}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: containers},
	}
	replicas := int32(pods)

	deploy, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: template,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("e2e cluster: create deployment %s/%s: %v", ns, name, err)
	}

	rsLabels := maps.Clone(podLabels)
	rsLabels["pod-template-hash"] = hash
	rsTemplate := *template.DeepCopy()
	rsTemplate.Labels = rsLabels
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-" + hash, Namespace: ns, Labels: rsLabels,
			Annotations:     map[string]string{"deployment.kubernetes.io/revision": "1"},
			OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "Deployment", deploy.Name, deploy.UID)},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name, "pod-template-hash": hash}},
			Template: rsTemplate,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("e2e cluster: create replicaset %s/%s: %v", ns, name, err)
	}

	w := &Workload{ReplicaSet: rs}
	now := metav1.Now()
	for i := range pods {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-%s-%d", name, hash, i), Namespace: ns,
				Labels: rsLabels, Annotations: annotations,
				OwnerReferences: []metav1.OwnerReference{ownerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)},
			},
			Spec: *rsTemplate.Spec.DeepCopy(),
		}
		pod.Spec.NodeName = NodeName
		created, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("e2e cluster: create pod %s/%s: %v", ns, pod.Name, err)
		}
		ip, err := c.allocatePodIP()
		if err != nil {
			t.Fatalf("e2e cluster: %v", err)
		}
		created.Status = corev1.PodStatus{
			Phase:     corev1.PodRunning,
			HostIP:    "127.0.0.1",
			HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
			PodIP:     ip,
			PodIPs:    []corev1.PodIP{{IP: ip}},
			StartTime: &now,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
		}
		for _, ctr := range created.Spec.Containers {
			created.Status.ContainerStatuses = append(created.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Ready: true, Started: new(true),
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		running, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("e2e cluster: set pod %s/%s running: %v", ns, pod.Name, err)
		}
		w.Pods = append(w.Pods, running)
	}

	// Statuses as the deployment and replicaset controllers would report
	// them, for clients that look at readiness.
	rs.Status = appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas, FullyLabeledReplicas: replicas, ObservedGeneration: rs.Generation}
	if w.ReplicaSet, err = cs.AppsV1().ReplicaSets(ns).UpdateStatus(ctx, rs, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("e2e cluster: replicaset %s/%s status: %v", ns, rs.Name, err)
	}
	deploy.Status = appsv1.DeploymentStatus{Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas, UpdatedReplicas: replicas, ObservedGeneration: deploy.Generation}
	if w.Deployment, err = cs.AppsV1().Deployments(ns).UpdateStatus(ctx, deploy, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("e2e cluster: deployment %s/%s status: %v", ns, name, err)
	}
	return w
}

func ownerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
		Controller: new(true), BlockOwnerDeletion: new(true),
	}
}

// podTemplateHash is a stable stand-in for the deployment controller's hash.
func podTemplateHash(name string) string {
	var h uint32 = 2166136261
	for i := range len(name) {
		h = (h ^ uint32(name[i])) * 16777619
	}
	const alphabet = "bcdfghjklmnpqrstvwxz2456789" // the controller's safe alphabet
	out := make([]byte, 10)
	for i := range out {
		out[i] = alphabet[h%uint32(len(alphabet))]
		h = h/uint32(len(alphabet)) ^ (h << 7)
	}
	return string(out)
}

// allocatePodIP hands out 127.0.0.2, 127.0.0.3, ... 127.255.255.254: every
// pod gets an address a local simulator can listen on.
func (c *Cluster) allocatePodIP() (string, error) {
	c.ipMu.Lock()
	defer c.ipMu.Unlock()
	c.nextIP++
	if c.nextIP >= 1<<24-1 {
		return "", fmt.Errorf("out of loopback pod IPs")
	}
	n := c.nextIP
	return netip.AddrFrom4([4]byte{127, byte(n >> 16), byte(n >> 8), byte(n)}).String(), nil
}

// RESTClient is an unversioned REST client for user, for raw requests such
// as Post().AbsPath("/apis/tap.linkerd.io/...").
func (c *Cluster) RESTClient(t testing.TB, user string) rest.Interface {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(c.UserConfig(user))
	if err != nil {
		t.Fatalf("e2e cluster: REST client for %s: %v", user, err)
	}
	return dc.RESTClient()
}

func (c *Cluster) rawClient(t testing.TB) rest.Interface {
	t.Helper()
	return c.RESTClient(t, UserAdmin)
}

// WriteKubeconfig writes a kubeconfig for user (token auth, the cluster's
// serving CA inline, current-context set) into a temp dir of t and returns
// its path, for running tapgate as a subprocess.
func (c *Cluster) WriteKubeconfig(t testing.TB, user string) string {
	t.Helper()
	cfg := c.UserConfig(user)
	kc := clientcmdapi.NewConfig()
	kc.Clusters["tapgate-e2e"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["tapgate-e2e"] = &clientcmdapi.Context{Cluster: "tapgate-e2e", AuthInfo: user, Namespace: "default"}
	kc.CurrentContext = "tapgate-e2e"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatalf("e2e cluster: write kubeconfig: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatalf("e2e cluster: %v", err)
	}
	return path
}
