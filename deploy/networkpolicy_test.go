package deploy_test

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// networkPolicy is the part of a NetworkPolicy checked here.
type networkPolicy struct {
	Kind string `yaml:"kind"`
	Spec struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
				PodSelector       *labelSelector `yaml:"podSelector"`
				IPBlock           *struct{}      `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port yaml.Node `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// TestNetworkPolicyAdmitsOnlyTheScraper: the daemon's pods take connections only from pods that match
// both the scraper's namespace and its pod labels, and only on the metrics port; nothing admits the
// health port, which the kubelet reaches from the node (always allowed), so no other pod can starve
// the probes and get the daemon restarted (issue 22: 64 slow clients from any pod did).
func TestNetworkPolicyAdmitsOnlyTheScraper(t *testing.T) {
	raw, err := os.ReadFile("kubernetes/networkpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var np networkPolicy
	if err := yaml.Unmarshal(raw, &np); err != nil {
		t.Fatal(err)
	}
	if np.Kind != "NetworkPolicy" {
		t.Fatalf("kind %q", np.Kind)
	}
	sel := np.Spec.PodSelector.MatchLabels
	if sel["app.kubernetes.io/name"] != "rollout" || sel["app.kubernetes.io/component"] != "daemon" {
		t.Errorf("podSelector %v does not select the daemon's pods", sel)
	}
	if len(np.Spec.PolicyTypes) != 1 || np.Spec.PolicyTypes[0] != "Ingress" {
		t.Errorf("policyTypes %v, want [Ingress]", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) == 0 {
		t.Fatal("no ingress rule: the scraper could not reach /metrics")
	}
	for i, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("ingress[%d] admits every source", i)
		}
		for j, peer := range rule.From {
			if peer.IPBlock != nil || peer.NamespaceSelector == nil || peer.PodSelector == nil ||
				len(peer.NamespaceSelector.MatchLabels) == 0 || len(peer.PodSelector.MatchLabels) == 0 {
				t.Errorf("ingress[%d].from[%d]: want one peer with both a namespace and a pod selector, with labels", i, j)
			}
		}
		if len(rule.Ports) == 0 {
			t.Errorf("ingress[%d] admits every port", i)
		}
		for _, p := range rule.Ports {
			if p.Port.Value != "http" && p.Port.Value != "9090" {
				t.Errorf("ingress[%d] admits port %q; want only the metrics port (http, 9090)", i, p.Port.Value)
			}
		}
	}
}
