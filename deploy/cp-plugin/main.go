// Command cp-plugin is the entrypoint of Stowage's Velero plugin images. It copies files and
// directory trees, as `cp -R` would, from the image into the volume Velero shares with its server
// container, and needs no shell or C library: it is built with CGO_ENABLED=0 and is the only
// program in the image besides the plugin itself.
//
// Usage:
//
//	cp-plugin SRC... DEST
//
// When DEST is an existing directory (or ends with "/"), each SRC is copied into it under its own
// base name: `cp-plugin /plugins/stowage-plugin-aws /target/` writes /target/stowage-plugin-aws/….
// With a single SRC and a DEST that does not exist, SRC is copied to DEST itself.
//
// Directories are copied recursively and merged into existing ones; files are written to a temporary
// name next to their destination and renamed over it, so a copy that stops half-way never leaves a
// truncated executable under the final name. Permission bits are kept exactly (the process umask does
// not apply), symbolic links are recreated as links, other file types are refused. Timestamps and
// owners are not kept: the files belong to the user the container runs as.
//
// Exit status: 0 when everything was copied, 1 on an error (reported on stderr), 2 on bad usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(os.Stdout, usage)
		return
	}
	if len(args) < 2 {
		fmt.Fprintf(os.Stderr, "cp-plugin: need at least one source and a destination\n\n%s", usage)
		os.Exit(2)
	}
	sources, dest := args[:len(args)-1], args[len(args)-1]
	if err := run(sources, dest); err != nil {
		fmt.Fprintf(os.Stderr, "cp-plugin: %v\n", err)
		os.Exit(1)
	}
}

const usage = `cp-plugin SRC... DEST
  Copies each SRC (a file or a directory tree) into the directory DEST, keeping permission bits,
  or copies a single SRC to DEST when DEST does not exist.
`

func run(sources []string, dest string) error {
	into := strings.HasSuffix(dest, "/") || strings.HasSuffix(dest, "/.")
	if info, err := os.Stat(dest); err == nil && info.IsDir() {
		into = true
	} else if into {
		return fmt.Errorf("destination %s is not a directory", dest)
	}
	if !into && len(sources) > 1 {
		return fmt.Errorf("destination %s must be an existing directory when copying %d sources", dest, len(sources))
	}
	for _, src := range sources {
		target := dest
		if into {
			base := filepath.Base(filepath.Clean(src))
			if base == "/" || base == "." || base == ".." {
				return fmt.Errorf("source %s has no base name to copy under", src)
			}
			target = filepath.Join(dest, base)
		}
		files, err := copyTree(src, target)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "cp-plugin: copied %s to %s (%d files)\n", src, target, files)
	}
	return nil
}

// copyTree copies src to dst (a file, a link or a whole directory) and returns how many files and
// links it wrote.
func copyTree(src, dst string) (int, error) {
	info, err := os.Lstat(src)
	if err != nil {
		return 0, err
	}
	switch mode := info.Mode(); {
	case mode.IsDir():
		return copyDir(src, dst, mode)
	case mode.IsRegular():
		return 1, copyFile(src, dst, mode)
	case mode&fs.ModeSymlink != 0:
		return 1, copyLink(src, dst)
	default:
		return 0, fmt.Errorf("%s: unsupported file type %s", src, mode.Type())
	}
}

func copyDir(src, dst string, mode fs.FileMode) (int, error) {
	if existing, err := os.Lstat(dst); err == nil {
		if !existing.IsDir() {
			return 0, fmt.Errorf("cannot copy directory %s over %s, which is not a directory", src, dst)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	} else if err := os.Mkdir(dst, 0o700); err != nil {
		return 0, err
	}
	// Owner-writable while its entries are written; the source's bits are applied afterwards.
	if err := os.Chmod(dst, 0o700); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return 0, err
	}
	count := 0
	for _, entry := range entries {
		n, err := copyTree(filepath.Join(src, entry.Name()), filepath.Join(dst, entry.Name()))
		count += n
		if err != nil {
			return count, err
		}
	}
	return count, os.Chmod(dst, permissions(mode))
}

func copyFile(src, dst string, mode fs.FileMode) (err error) {
	if existing, statErr := os.Lstat(dst); statErr == nil && existing.IsDir() {
		return fmt.Errorf("cannot copy file %s over %s, which is a directory", src, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".cp-plugin-*")
	if err != nil {
		return err
	}
	tmp := out.Name()
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = io.Copy(out, in); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err = out.Sync(); err != nil {
		return err
	}
	if err = out.Chmod(permissions(mode)); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func copyLink(src, dst string) error {
	target, err := os.Readlink(src)
	if err != nil {
		return err
	}
	if existing, err := os.Lstat(dst); err == nil {
		if existing.IsDir() {
			return fmt.Errorf("cannot copy link %s over %s, which is a directory", src, dst)
		}
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	return os.Symlink(target, dst)
}

// permissions keeps the permission, setuid, setgid and sticky bits of mode in os.Chmod's form.
func permissions(mode fs.FileMode) fs.FileMode {
	return mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}
