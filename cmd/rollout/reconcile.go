package main

import "github.com/spf13/cobra"

// TODO: placeholder until its issue lands.
func (app *App) planCmd() *cobra.Command {
	return &cobra.Command{Use: "plan", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
func (app *App) reconcileCmd() *cobra.Command {
	return &cobra.Command{Use: "reconcile", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
