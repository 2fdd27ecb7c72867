package main

import (
	"fmt"
	"io"

	"github.com/ferryftp/ferry/internal/escape"

	"github.com/ferryftp/ferry/internal/config"
)

const configUsage = `Usage:
  ferry config check FILE   load and validate FILE, printing every problem
  ferry config example      print a commented settings file with every key
`

// runConfig runs `ferry config SUBCOMMAND ...` (args start after "config")
// and returns the exit status: 0 on success, 1 when a checked file has
// problems, 2 on a usage error.
func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			io.WriteString(stderr, "Usage: ferry config check FILE\n")
			return 2
		}
		if _, err := config.Check(args[1]); err != nil {
			fmt.Fprintln(stderr, errText(err)) // one problem a line
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", escape.Display(args[1]))
		return 0
	case "example":
		if len(args) != 1 {
			io.WriteString(stderr, "Usage: ferry config example\n")
			return 2
		}
		io.WriteString(stdout, config.Example())
		return 0
	case "help", "-h", "-help", "--help":
		io.WriteString(stdout, configUsage)
		return 0
	}
	fmt.Fprintf(stderr, "ferry config: unknown command %q\n%s", args[0], configUsage)
	return 2
}
