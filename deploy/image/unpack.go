package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func unpackCommand(args []string) error {
	flags := flag.NewFlagSet("stowage-image unpack", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	layoutDir := flags.String("layout", "", "an OCI image layout directory")
	dest := flags.String("dest", "", "the directory the image's file system is written into")
	ref := flags.String("ref", "", "the image's "+refNameAnnotation+" in the layout (needed when it holds several)")
	if err := flags.Parse(args); err != nil {
		return usageError{err}
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", flags.Args())}
	}
	if *layoutDir == "" || *dest == "" {
		return usageError{errors.New("--layout and --dest are required")}
	}
	img, err := layoutImage(*layoutDir, *ref)
	if err != nil {
		return err
	}
	// Every blob is read and checked against its digest, the layers against the config's diff IDs.
	if err := validate.Image(img); err != nil {
		return fmt.Errorf("%s does not verify: %w", *layoutDir, err)
	}
	if err := os.MkdirAll(*dest, 0o755); err != nil {
		return err
	}
	// Extract flattens the layers (whiteouts applied) into one tar stream.
	files := mutate.Extract(img)
	defer files.Close()
	if err := extract(tar.NewReader(files), *dest); err != nil {
		return fmt.Errorf("unpacking into %s: %w", *dest, err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(config, '\n'))
	return err
}

// layoutImage finds the image named ref (or the only image) in an OCI image layout.
func layoutImage(dir, ref string) (v1.Image, error) {
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	var refs []string
	for _, desc := range manifest.Manifests {
		if !desc.MediaType.IsImage() {
			continue
		}
		refs = append(refs, desc.Annotations[refNameAnnotation])
		if ref == "" || desc.Annotations[refNameAnnotation] == ref {
			found = append(found, desc)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%s: want exactly one image named %q, found %d (images: %q)", dir, ref, len(found), refs)
	}
	return index.Image(found[0].Digest)
}

// extract writes the members of a flattened image file system into dest, keeping permission bits,
// and owners when running as root. Members that would land outside dest, or under a symbolic link,
// are refused.
func extract(reader *tar.Reader, dest string) error {
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode
	asRoot := os.Geteuid() == 0
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name, err := memberPath(header.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		target := filepath.Join(dest, filepath.FromSlash(name))
		if err := makeParents(dest, name); err != nil {
			return err
		}
		mode := permissions(header.FileInfo().Mode())
		switch header.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			dirs = append(dirs, dirMode{target, mode})
		case tar.TypeReg:
			if err := writeFile(target, reader, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := removeNonDir(target); err != nil {
				return err
			}
			if err := os.Symlink(header.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			linked, err := memberPath(header.Linkname)
			if err != nil {
				return err
			}
			if err := removeNonDir(target); err != nil {
				return err
			}
			if err := os.Link(filepath.Join(dest, filepath.FromSlash(linked)), target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported member type %q", header.Name, header.Typeflag)
		}
		if asRoot {
			if err := os.Lchown(target, header.Uid, header.Gid); err != nil {
				return err
			}
		}
	}
	// Directories get their modes last, so read-only ones could still be filled.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}

// memberPath cleans a member name and refuses one that leaves the root.
func memberPath(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("member %q leaves the image root", name)
	}
	return clean, nil
}

// makeParents creates the missing parents of name under dest and refuses a parent that is a
// symbolic link or not a directory.
func makeParents(dest, name string) error {
	current := dest
	parts := strings.Split(name, "/")
	for _, part := range parts[:len(parts)-1] {
		current = filepath.Join(current, part)
		info, err := os.Lstat(current)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(current, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return fmt.Errorf("member %q: %s is not a directory", name, current)
		}
	}
	return nil
}

func removeNonDir(target string) error {
	info, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("%s is a directory", target)
	}
	return os.Remove(target)
}

func writeFile(target string, content io.Reader, mode fs.FileMode) error {
	if err := removeNonDir(target); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, content); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// permissions keeps the permission, setuid, setgid and sticky bits of mode in os.Chmod's form.
func permissions(mode fs.FileMode) fs.FileMode {
	return mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}
