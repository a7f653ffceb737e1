package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// finishOnSignal holds SIGTERM and SIGINT back while a command writes (a reconcile pass, a manual
// operation, a comment's commands), so that a signal never cuts it between a rollback commit and the notification or the
// record of the notification owed that follow it: the CronJob's activeDeadlineSeconds, a node drain
// or a Ctrl-C would otherwise lose the rollback's notification, the one window docs/reconcile.md
// grants to a crash. The first signal says that the writes under way finish first; a second one ends
// the process at once, as usual. The daemon (`rollout run`) finishes its passes on its own.
//
// It returns the function that lets signals through again.
func (app *App) finishOnSignal(what string) (release func()) {
	caught := make(chan os.Signal, 1)
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
		select {
		case sig := <-caught:
			// The next signal takes its default course: the process ends.
			signal.Stop(caught)
			fmt.Fprintf(app.Stderr, "rollout: %s: finishing %s first (its commits, pull requests and notifications); signal again to stop at once\n", sig, what)
		case <-done:
		}
	}()
	return release
}
