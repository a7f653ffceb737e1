package deploy_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/rollout-dev/rollout/reconcile/githubforge"
)

// kustomize builds the kustomization in dir as `kubectl apply -k` would (the kustomize library that
// kubectl embeds, with its default options: no plugins, files only from below the kustomization's
// root and its resources), and decodes every object it outputs.
func kustomize(t *testing.T, dir string) []object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	raw, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kustomize build %s: %v", dir, err)
		}
		out = append(out, o)
	}
	return out
}

// podEnv is the environment a container of the built output gets: its ConfigMaps' data, then its env
// entries (a Secret's value shown as secret:NAME/KEY).
func podEnv(t *testing.T, objs []object, ctr container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range ctr.EnvFrom {
		found := false
		for _, o := range objs {
			if o.Kind == "ConfigMap" && from.ConfigMapRef != nil && o.Metadata.Name == from.ConfigMapRef.Name {
				found = true
				for k, v := range o.Data {
					env[k] = v
				}
			}
		}
		if !found {
			t.Errorf("container %s reads a ConfigMap %+v that the build does not hold", ctr.Name, from.ConfigMapRef)
		}
	}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// TestKustomizeOverlaySetsTheRepositoryOnce builds the base and the example overlay. In both, the
// Deployment and the CronJob get the same repository and GitHub App id from one generated ConfigMap and
// the App's private key from a Secret, which is what githubforge reads as an App (checked with a real
// key). The overlay changes the repository for both by one line, and pins the image to a release.
func TestKustomizeOverlaySetsTheRepositoryOnce(t *testing.T) {
	c := readGoreleaser(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	for _, tt := range []struct {
		dir, repository, tag string
	}{
		{"kubernetes", "acme/llm-config", "v1"},
		{"overlays/example", "my-org/llm-config", "1.4.0"},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			objs := kustomize(t, tt.dir)
			var pods int
			for _, o := range objs {
				if o.Metadata.Namespace != "rollout" && o.Kind != "Namespace" {
					t.Errorf("%s %s is in namespace %q, want rollout", o.Kind, o.Metadata.Name, o.Metadata.Namespace)
				}
				var templates []podTemplate
				switch o.Kind {
				case "Deployment":
					templates = append(templates, o.Spec.Template)
				case "CronJob":
					templates = append(templates, o.Spec.JobTemplate.Spec.Template)
				case "ConfigMap":
					// A generated name carries a hash of the content, so that a change rolls the pods.
					if !regexp.MustCompile(`^rollout-[a-z0-9]{10}$`).MatchString(o.Metadata.Name) {
						t.Errorf("ConfigMap %q: want the generated rollout-<hash>", o.Metadata.Name)
					}
				}
				for _, p := range templates {
					for _, ctr := range p.Spec.Containers {
						pods++
						where := tt.dir + ": " + o.Kind + " " + o.Metadata.Name
						checkImage(t, where, ctr.Image, c)
						if !strings.HasSuffix(ctr.Image, ":"+tt.tag) {
							t.Errorf("%s: image %s, want the tag %s", where, ctr.Image, tt.tag)
						}
						env := podEnv(t, objs, ctr)
						if env["GITHUB_REPOSITORY"] != tt.repository || env["GITHUB_APP_PRIVATE_KEY"] != "secret:rollout-github-app/private-key" || env["GITHUB_TOKEN"] != "" {
							t.Errorf("%s: environment %v, want GITHUB_REPOSITORY=%s and the App's key from the Secret, no GITHUB_TOKEN", where, env, tt.repository)
						}
						// What the binary reads of that environment: an App on that repository.
						env["GITHUB_APP_PRIVATE_KEY"] = pemKey
						opts, err := githubforge.FromEnv(func(k string) string { return env[k] })
						if err != nil {
							t.Fatalf("%s: %v", where, err)
						}
						if opts.Owner+"/"+opts.Repo != tt.repository || opts.AppID == 0 || opts.Token != "" {
							t.Errorf("%s: githubforge reads owner %q, repo %q, App %d, token set %v", where, opts.Owner, opts.Repo, opts.AppID, opts.Token != "")
						}
						opts.Now = func() time.Time { return time.Date(2026, 4, 16, 0, 0, 0, 0, time.UTC) }
						if _, err := githubforge.New(opts); err != nil {
							t.Errorf("%s: githubforge.New with the App: %v", where, err)
						}
					}
				}
			}
			if pods != 2 {
				t.Errorf("%d containers in Deployments and CronJobs, want the daemon's and the CronJob's", pods)
			}
		})
	}
}
