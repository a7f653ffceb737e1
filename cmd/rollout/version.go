package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped by the release build (GoReleaser's ldflags: -X main.version=… -X main.commit=… -X
// main.date=…). A plain `go build` leaves them empty and versionInfo reads the build info instead.
var (
	version = ""
	commit  = ""
	date    = ""
)

// buildVersion is what `rollout version` prints: where the binary came from.
type buildVersion struct {
	// Version is the release tag without its "v" (1.4.0), the module version `go install
	// …@v1.4.0` recorded (v1.4.0), or "(devel)" for a build from a checkout.
	Version string `json:"version"`
	// Commit is the git commit the binary was built from; "" when unknown.
	Commit string `json:"commit"`
	// Modified is true when the checkout had uncommitted changes (from the build info only).
	Modified bool `json:"modified"`
	// Date is when that commit was made (build info) or when the release was built (GoReleaser).
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// versionInfo merges the stamped values with the build info Go records in every binary: the
// stamps win, and the build info fills what a plain `go build` or `go install` left empty.
func versionInfo(info *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || info == nil {
		if v.Version == "" {
			v.Version = "(devel)"
		}
		return v
	}
	if info.GoVersion != "" {
		v.GoVersion = info.GoVersion
	}
	if v.Version == "" {
		v.Version = info.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if v.Commit == "" {
				v.Commit = s.Value
			}
		case "vcs.time":
			if v.Date == "" {
				v.Date = s.Value
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// currentVersion is versionInfo of this binary.
func currentVersion() buildVersion { return versionInfo(debug.ReadBuildInfo()) }

// String is the one line `rollout --version` prints.
func (v buildVersion) String() string {
	s := "rollout version " + v.Version
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if v.Modified {
			c += "-dirty"
		}
		s += " (commit " + c
		if v.Date != "" {
			s += ", " + v.Date
		}
		s += ")"
	}
	return s + " " + v.GoVersion + " " + v.Platform
}

// versionOptions are the inputs of `rollout version`.
type versionOptions struct {
	Output string
}

func (app *App) versionCmd() *cobra.Command {
	opts := &versionOptions{}
	cmd := &cobra.Command{
		Use:   "version [-o json]",
		Short: "Print rollout's version, commit, build date and Go version",
		Long: "version prints the release this binary was built from (stamped by the release build, or read\n" +
			"from the build information Go records), the git commit, its date and the Go version.\n\n" +
			"Example:\n  rollout version -o json",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return versionRun(app.Stdout, currentVersion(), opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "text", "output format: text or json")
	return cmd
}

// setVersion gives the root command its --version flag, printing the same line as `rollout version`.
func setVersion(root *cobra.Command) {
	root.Version = currentVersion().String()
	root.SetVersionTemplate("{{.Version}}\n")
}

func versionRun(w io.Writer, v buildVersion, opts *versionOptions) error {
	switch opts.Output {
	case "text":
		_, err := fmt.Fprintln(w, v.String())
		return err
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	default:
		return usageError{fmt.Errorf("unknown output format %q: want text or json", opts.Output)}
	}
}
