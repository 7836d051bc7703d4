// Command velero-harness drives plugin executables with Velero's own plugin client code, the way the
// Velero server does: it discovers every executable in a plugin directory with clientmgmt's process
// registry, asks each for its plugins, obtains restartable ObjectStore and VolumeSnapshotter clients
// from clientmgmt's manager, calls Init with the configuration given on the command line and runs a
// round trip through every call of those interfaces. It prints a JSON report on stdout and exits 1
// when a step failed, 2 on a usage error.
//
// Usage:
//
//	velero-harness run --plugin-dir DIR [--log-level info]
//	    [--object-store 'NAME={"bucket":"b","prefix":"p",...}']...
//	    [--volume-snapshotter NAME --volume-snapshotter-config '{...}' --volume-id ID
//	     [--volume-az AZ] [--volume-type TYPE] [--volume-iops N] [--pv-template '{...}']]
//	    [--restore-timeout 60s]
//
// Velero starts its own executable with "run-plugins" to serve the plugins compiled into it; the
// registry does the same with this executable, so "velero-harness run-plugins" serves an empty
// plugin server.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"github.com/vmware-tanzu/velero/pkg/plugin/framework"
)

func main() {
	if len(os.Args) < 2 {
		usage(errors.New("missing subcommand"))
	}
	switch os.Args[1] {
	case "run-plugins":
		// What "velero run-plugins" is to Velero: the plugins built into the server binary. The
		// harness has none; the registry still starts this and asks for its list, as Velero does.
		framework.NewServer().BindFlags(pflag.CommandLine).Serve()
	case "run":
		options, err := parseOptions(os.Args[2:])
		if err != nil {
			usage(err)
		}
		report := run(options)
		if err := report.write(os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "velero-harness: writing the report: %v\n", err)
			os.Exit(1)
		}
		if !report.OK {
			os.Exit(1)
		}
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usageText)
	default:
		usage(fmt.Errorf("unknown subcommand %q", os.Args[1]))
	}
}

const usageText = `velero-harness: runs plugin executables through Velero's own plugin client (clientmgmt).

  velero-harness run --plugin-dir DIR [--log-level LEVEL]
      [--object-store 'NAME=CONFIG_JSON']...          (repeatable; CONFIG_JSON must hold "bucket", may hold "prefix")
      [--volume-snapshotter NAME --volume-snapshotter-config CONFIG_JSON --volume-id ID
       [--volume-az AZ] [--volume-type TYPE] [--volume-iops N] [--pv-template PV_JSON]]
      [--restore-timeout DURATION]

Prints a JSON report on stdout; exit status 0 when every step passed, 1 when one failed, 2 on bad usage.
`

func usage(err error) {
	fmt.Fprintf(os.Stderr, "velero-harness: %v\n\n%s", err, usageText)
	os.Exit(2)
}
