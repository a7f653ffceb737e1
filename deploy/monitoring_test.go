package deploy_test

import "testing"

// TestTheDaemonIsScrapedOnce: the usual annotation-based Prometheus configuration (the
// prometheus-community chart's, say) has one job for annotated pods and one for the endpoints of
// annotated Services. Were both the daemon's pod and its Service annotated, Prometheus would scrape the
// daemon twice under two job labels: every series twice, every alert of deploy/prometheus fired twice,
// and rollout_ticks_total summed double, which docs/kubernetes.md counts among the harms of a second
// replica. The pod carries the annotations; the Service, which a ServiceMonitor may still select, does
// not.
func TestTheDaemonIsScrapedOnce(t *testing.T) {
	var annotated []string
	for file, objs := range manifests(t) {
		for _, o := range objs {
			switch o.Kind {
			case "Deployment":
				if o.Spec.Template.Metadata.Annotations["prometheus.io/scrape"] == "true" {
					annotated = append(annotated, file+": the pod template")
				}
			case "Service":
				if o.Metadata.Annotations["prometheus.io/scrape"] == "true" {
					annotated = append(annotated, file+": Service "+o.Metadata.Name)
				}
			}
		}
	}
	if len(annotated) != 1 {
		t.Errorf("prometheus.io/scrape on %q: want it on the daemon's pod template alone", annotated)
	}
}

// TestLivenessIsNotReadiness: the daemon's liveness probe asks /livez, whether the daemon's schedule
// goes on, not /healthz or /readyz, whether GitHub answered: a restart does not cure a GitHub outage,
// and the restarted process, unable to open the repository, would crash-loop through it.
func TestLivenessIsNotReadiness(t *testing.T) {
	for file, objs := range manifests(t) {
		for _, o := range objs {
			if o.Kind != "Deployment" {
				continue
			}
			for _, ctr := range o.Spec.Template.Spec.Containers {
				if ctr.LivenessProbe == nil || ctr.LivenessProbe.HTTPGet.Path != "/livez" {
					t.Errorf("%s: container %s: the liveness probe must ask /livez", file, ctr.Name)
				}
				if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
					t.Errorf("%s: container %s: the readiness probe must ask /readyz", file, ctr.Name)
				}
			}
		}
	}
}
