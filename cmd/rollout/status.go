package main

import "github.com/spf13/cobra"

// TODO: placeholder until its issue lands.
func (app *App) statusCmd() *cobra.Command {
	return &cobra.Command{Use: "status", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
