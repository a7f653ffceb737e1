package main

import "github.com/spf13/cobra"

// TODO: placeholder until its issue lands.
func (app *App) rollbackCmd() *cobra.Command {
	return &cobra.Command{Use: "rollback", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
func (app *App) pauseCmd() *cobra.Command {
	return &cobra.Command{Use: "pause", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
func (app *App) resumeCmd() *cobra.Command {
	return &cobra.Command{Use: "resume", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
