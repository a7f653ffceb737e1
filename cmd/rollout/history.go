package main

import "github.com/spf13/cobra"

// TODO: placeholder until its issue lands.
func (app *App) historyCmd() *cobra.Command {
	return &cobra.Command{Use: "history", Short: "not built yet", Hidden: true, RunE: func(*cobra.Command, []string) error { return errFailed }}
}
