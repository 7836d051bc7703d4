// Command stowage-image builds the Velero plugin image of one Stowage plugin without a container
// engine, with go-containerregistry, and unpacks such an image into a directory.
//
//	stowage-image build --name BIN --dir DIR --copier FILE --out OUT [--version V] [--source URL]
//	    [--revision SHA] [--created SECONDS] [--platform linux/amd64]
//	stowage-image unpack --layout DIR --dest ROOT [--ref NAME]
//
// build reads DIR, the single-file build of one plugin (DIR/BIN, the executable, and DIR/lib/…, its
// non-executable libraries), and the static copier FILE (deploy/cp-plugin), and writes one image of
// one layer:
//
//	/bin/cp-plugin           0755  the copier, the entrypoint
//	/plugins/BIN/BIN         0755  the plugin executable
//	/plugins/BIN/lib/…       0644  everything else, never executable
//
// with the configuration Velero's plugin images have: user 65532:65532, entrypoint
// ["/bin/cp-plugin", "/plugins/BIN", "/target/"] (Velero mounts its plugin volume at /target in the
// init container, so the files land in /plugins/BIN/… of the server container), OCI labels and every
// timestamp set to --created. The same inputs give the same bytes, so the same digest. Outputs:
// OUT/layout (an OCI image layout, the image tagged --version in it), OUT/image.tar (the same layout
// as an OCI archive) and OUT/image.json (what was built), also printed on stdout.
//
// unpack reads an OCI image layout, checks every blob against its digest and the layers against the
// config's diff IDs, and writes the image's flattened file system into ROOT, keeping permission bits
// (and owners, when run as root). It prints the image's config file (JSON) on stdout.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fail(2, "missing subcommand\n\n%s", usage)
	}
	var err error
	switch os.Args[1] {
	case "build":
		err = buildCommand(os.Args[2:])
	case "unpack":
		err = unpackCommand(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
		return
	default:
		fail(2, "unknown subcommand %q\n\n%s", os.Args[1], usage)
	}
	if err != nil {
		if usageErr, ok := err.(usageError); ok {
			fail(2, "%v\n\n%s", usageErr.error, usage)
		}
		fail(1, "%v", err)
	}
}

const usage = `stowage-image: builds and unpacks Stowage's Velero plugin images (OCI, no container engine).

  stowage-image build --name BIN --dir DIR --copier FILE --out OUT
      [--version V] [--source URL] [--revision SHA] [--created SECONDS] [--platform OS/ARCH]
      DIR holds BIN (the plugin executable) and lib/ (its libraries, not executable).
      Writes OUT/layout (OCI image layout), OUT/image.tar (OCI archive), OUT/image.json.
  stowage-image unpack --layout DIR --dest ROOT [--ref NAME]
      Verifies the image and writes its file system into ROOT; prints its config on stdout.
`

// usageError is an error in the command line (exit status 2).
type usageError struct{ error }

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "stowage-image: "+format+"\n", args...)
	os.Exit(code)
}
