package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// The one output convention of every command that prints results, as gh has it: -o text (for people,
// the default) or -o json (one JSON value per run: an array or an object, never JSON Lines). docs/cli.md
// lists the shape of each command's JSON.

// outputFlag adds -o/--output to cmd, holding text or json.
func outputFlag(cmd *cobra.Command, out *string, shape string) {
	cmd.Flags().StringVarP(out, "output", "o", "text", "output format: text or json ("+shape+")")
}

// checkOutput refuses an output format other than text and json. "table", the name of text in
// earlier versions, is still accepted.
func checkOutput(out *string) error {
	switch *out {
	case "text", "json":
		return nil
	case "table", "":
		*out = "text"
		return nil
	}
	return usageError{fmt.Errorf("unknown output format %q: want text or json", *out)}
}

// writeJSON prints v as one indented JSON value, HTML left unescaped.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// redactSource is a metrics source fit for a message: a URL keeps its scheme, host and path, never a
// user, a password or a query (which may hold a token). A URL inside a source's own scheme
// (prometheus:http://user:pass@host) is redacted the same way, and one that does not parse loses
// everything between "//" and its last "@", and everything from its first "?" or "#".
func redactSource(src string) string {
	u, err := url.Parse(src)
	switch {
	case err != nil:
		if i := strings.IndexAny(src, "?#"); i >= 0 {
			src = src[:i]
		}
		if i := strings.Index(src, "//"); i >= 0 {
			if at := strings.LastIndex(src[i:], "@"); at >= 0 {
				src = src[:i+2] + src[i+at+1:]
			}
		}
		return src
	case u.Opaque != "" && strings.Contains(u.Opaque, "//"):
		return u.Scheme + ":" + redactSource(u.Opaque)
	case u.Host == "":
		return src
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
