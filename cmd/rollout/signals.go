package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// finishOnSignal holds SIGTERM and SIGINT back while a command writes (a reconcile pass, a manual
// operation, a comment's commands), so that a signal never cuts it between a rollback commit and the
// notification or the record of the notification owed that follow it (a pass begins no further rollout
// and a notification under way is cut short soon, see stopping): the CronJob's
// activeDeadlineSeconds, a node drain, a cancelled GitHub Actions job or a Ctrl-C would otherwise lose
// the rollback's notification, the one window docs/reconcile.md grants to a crash. The first signal
// says that the writes under way finish first; the same signal again ends the process at once (exit
// 128 + the signal's number, as a shell reports it). The other signal does not: a GitHub Actions
// runner cancels a job with SIGINT and, 7.5 s later, SIGTERM, which is one request to stop, not two.
// The daemon (`rollout run`) finishes its passes on its own.
//
// It returns the function that lets signals through again.
func (app *App) finishOnSignal(what string) (release func()) {
	stopping := app.stopping()
	caught := make(chan os.Signal, 2)
	signal.Notify(caught, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	var once sync.Once
	release = func() {
		once.Do(func() {
			signal.Stop(caught)
			close(done)
		})
	}
	go func() {
		var first os.Signal
		for {
			select {
			case sig := <-caught:
				switch {
				case first == nil:
					first = sig
					app.stopOnce.Do(func() { close(stopping) })
					fmt.Fprintf(app.Stderr, "rollout: %s: finishing %s first (its commits, pull requests and notifications); %s again to stop at once\n", sig, what, sig)
				case sig == first:
					fmt.Fprintf(app.Stderr, "rollout: %s again: stopping at once\n", sig)
					os.Exit(128 + signalNumber(sig))
				default:
					fmt.Fprintf(app.Stderr, "rollout: %s: still finishing %s; %s again to stop at once\n", sig, what, first)
				}
			case <-done:
				return
			}
		}
	}()
	return release
}

// stopping is closed when the first signal that finishOnSignal holds back arrives: a pass then begins
// no further rollout, and a notification under way gets only notify.DefaultStoppingGrace more.
func (app *App) stopping() chan struct{} {
	app.stopMu.Lock()
	defer app.stopMu.Unlock()
	if app.stopCh == nil {
		app.stopCh = make(chan struct{})
	}
	return app.stopCh
}

// signalNumber is sig's number (15 for SIGTERM), or 1 for a signal that has none.
func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return 1
}
