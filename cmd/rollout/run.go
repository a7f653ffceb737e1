package main

import (
	"context"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollout-dev/rollout/reconcile/daemon"
)

// runOptions are the inputs of `rollout run`.
type runOptions struct {
	Listen       string
	HealthListen string
	Metrics      string
	Poll         time.Duration
	Signed       bool
	// ready, when set, receives the address the daemon listens on (tests listen on :0).
	ready chan<- net.Addr
}

func (app *App) runCmd() *cobra.Command {
	opts := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [--listen ADDR] [--health-addr ADDR]",
		Short: "Run the reconciler as a daemon, each rollout on its own schedule",
		Long: "run evaluates each rollout on the cron schedule its spec names (default every 15 minutes),\n" +
			"re-reading the specs from the repository on every wake-up, and serves /healthz and /metrics\n" +
			"(Prometheus) on --listen, and /healthz, /readyz and /livez alone on --health-addr, a listener no\n" +
			"client of /metrics can starve. /healthz and /readyz answer 503 while the repository cannot be\n" +
			"read; /livez only while the daemon's own schedule is stuck (for a liveness probe: a restart does\n" +
			"not cure a git outage). SIGTERM or SIGINT lets the pass in flight finish, then exits.\n\n" +
			"--listen defaults to loopback (127.0.0.1:9090). To let a Prometheus on another host scrape it,\n" +
			"listen on all interfaces (--listen :9090) or one (--listen 10.0.0.5:9090) and restrict who\n" +
			"may connect with a firewall or network policy; see docs/reconcile.md. Kubernetes probes need\n" +
			"--health-addr on the pod's IP too (--health-addr :9091).\n\n" +
			"Example:\n  rollout run --repo https://github.com/acme/llm-config --listen 127.0.0.1:9090",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return app.runDaemon(ctx, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", daemon.DefaultListen,
		"address of /healthz and /metrics; loopback by default, \":9090\" listens on every interface")
	cmd.Flags().StringVar(&opts.HealthListen, "health-addr", daemon.DefaultHealthListen,
		"address of /healthz, /readyz and /livez alone, for probes; loopback by default, \":9091\" listens on every interface")
	cmd.Flags().StringVar(&opts.Metrics, "metrics", "", "metrics source for every rollout, replacing the specs' own")
	cmd.Flags().BoolVar(&opts.Signed, "signed-commits", false, "make commits through GitHub's API, so GitHub signs them (GitHub only)")
	cmd.Flags().DurationVar(&opts.Poll, "poll", daemon.DefaultPoll, "longest wait between two readings of the specs")
	return cmd
}

// runDaemon runs the daemon until ctx ends.
func (app *App) runDaemon(ctx context.Context, opts *runOptions) error {
	log := slog.New(slog.NewTextHandler(app.Stderr, nil))
	w, err := app.wire(ctx, app.Stderr, opts.Signed)
	if err != nil {
		return err
	}
	loop, err := app.loop(w, opts.Metrics, log)
	if err != nil {
		return err
	}
	d := &daemon.Daemon{
		Reconciler:   loop,
		Notifier:     loop.Notifier,
		Listen:       opts.Listen,
		HealthListen: opts.HealthListen,
		Now:          app.Now,
		Poll:         opts.Poll,
		Log:          log,
	}
	if opts.ready != nil {
		go func() {
			if addr, err := d.Addr(ctx); err == nil {
				opts.ready <- addr
			}
		}()
	}
	return d.Run(ctx)
}
