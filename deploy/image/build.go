package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// pluginUser is the user of Velero's own plugin images (a non-root user with no passwd entry).
	pluginUser = "65532:65532"
	// copierPath is where the copier sits in the image (without the leading slash).
	copierPath = "bin/cp-plugin"
	// targetDir is where Velero mounts its plugin volume in the init container.
	targetDir = "/target/"
	// refNameAnnotation names an image inside an OCI image layout (its "tag").
	refNameAnnotation = "org.opencontainers.image.ref.name"
)

type buildOptions struct {
	name, dir, copier, out    string
	version, source, revision string
	created                   time.Time
	platform                  v1.Platform
}

func buildCommand(args []string) error {
	flags := flag.NewFlagSet("stowage-image build", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	name := flags.String("name", "", "the plugin executable's name (BIN)")
	dir := flags.String("dir", "", "the single-file build: DIR/BIN and DIR/lib/…")
	copier := flags.String("copier", "", "the static cp-plugin executable")
	out := flags.String("out", "", "output directory (layout/, image.tar, image.json)")
	version := flags.String("version", "latest", "image version: the org.opencontainers.image.version label and the tag in the layout")
	source := flags.String("source", "", "org.opencontainers.image.source label (omitted when empty)")
	revision := flags.String("revision", "", "org.opencontainers.image.revision label (omitted when empty)")
	created := flags.String("created", os.Getenv("SOURCE_DATE_EPOCH"), "every timestamp of the image, in seconds since 1970 (default: $SOURCE_DATE_EPOCH)")
	platform := flags.String("platform", "linux/amd64", "the image's OS/ARCH; the executables must be built for it")
	if err := flags.Parse(args); err != nil {
		return usageError{err}
	}
	if flags.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", flags.Args())}
	}
	for flagName, value := range map[string]string{"name": *name, "dir": *dir, "copier": *copier, "out": *out} {
		if value == "" {
			return usageError{fmt.Errorf("--%s is required", flagName)}
		}
	}
	if *name != path.Base(*name) || strings.HasPrefix(*name, ".") {
		return usageError{fmt.Errorf("--name %q must be a plain file name", *name)}
	}
	if *created == "" {
		return usageError{errors.New("give --created SECONDS or set SOURCE_DATE_EPOCH: every timestamp in the image is set to it")}
	}
	seconds, err := strconv.ParseInt(*created, 10, 64)
	if err != nil || seconds < 0 {
		return usageError{fmt.Errorf("--created %q: want whole seconds since 1970", *created)}
	}
	parsed, err := v1.ParsePlatform(*platform)
	if err != nil || parsed.OS != "linux" || parsed.Architecture == "" {
		return usageError{fmt.Errorf("--platform %q: want linux/ARCH", *platform)}
	}
	summary, err := build(buildOptions{
		name: *name, dir: *dir, copier: *copier, out: *out,
		version: *version, source: *source, revision: *revision,
		created: time.Unix(seconds, 0).UTC(), platform: *parsed,
	})
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(summary)
}

// entry is one member of the image's layer.
type entry struct {
	name   string // path in the image, without the leading slash
	source string // file on this machine; empty for a directory
	mode   int64
}

// fileSummary describes one regular file of the layer in image.json.
type fileSummary struct {
	Path   string `json:"path"`
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// imageSummary is image.json: what was built, from what.
type imageSummary struct {
	Name       string            `json:"name"`
	Ref        string            `json:"ref"`
	Digest     string            `json:"digest"`
	Platform   string            `json:"platform"`
	Created    string            `json:"created"`
	User       string            `json:"user"`
	Entrypoint []string          `json:"entrypoint"`
	Labels     map[string]string `json:"labels"`
	Layout     string            `json:"layout"`
	Archive    string            `json:"archive"`
	// ArchiveBytes and LayerBytes are what is stored and pulled; UncompressedBytes is the layer's tar.
	ArchiveBytes      int64         `json:"archiveBytes"`
	LayerDigest       string        `json:"layerDigest"`
	LayerBytes        int64         `json:"layerBytes"`
	UncompressedBytes int64         `json:"uncompressedBytes"`
	Files             []fileSummary `json:"files"`
}

func build(opts buildOptions) (*imageSummary, error) {
	if err := checkExecutable(filepath.Join(opts.dir, opts.name), opts.platform, false); err != nil {
		return nil, fmt.Errorf("the plugin executable: %w", err)
	}
	if err := checkExecutable(opts.copier, opts.platform, true); err != nil {
		return nil, fmt.Errorf("the copier: %w", err)
	}
	entries, err := pluginEntries(opts.dir, opts.name)
	if err != nil {
		return nil, err
	}
	entries = append([]entry{{name: "bin/", mode: 0o755}, {name: copierPath, source: opts.copier, mode: 0o755}, {name: "plugins/", mode: 0o755}}, entries...)

	if err := os.MkdirAll(opts.out, 0o755); err != nil {
		return nil, err
	}
	layerFile, err := os.CreateTemp(opts.out, ".layer-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(layerFile.Name())
	files, err := writeLayerTar(layerFile, entries, opts.created)
	if closeErr := layerFile.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the layer: %w", err)
	}
	layerInfo, err := os.Stat(layerFile.Name())
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(layerFile.Name(),
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.DefaultCompression), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("compressing the layer: %w", err)
	}

	entrypoint := []string{"/" + copierPath, "/plugins/" + opts.name, targetDir}
	labels := map[string]string{
		"org.opencontainers.image.title":       opts.name,
		"org.opencontainers.image.description": fmt.Sprintf("Velero plugin image: its entrypoint copies /plugins/%s into Velero's plugin volume (mounted at %s)", opts.name, targetDir),
		"org.opencontainers.image.version":     opts.version,
		"org.opencontainers.image.created":     opts.created.Format(time.RFC3339),
	}
	if opts.source != "" {
		labels["org.opencontainers.image.source"] = opts.source
	}
	if opts.revision != "" {
		labels["org.opencontainers.image.revision"] = opts.revision
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: opts.created},
			CreatedBy: fmt.Sprintf("stowage-image build: /%s and /plugins/%s", copierPath, opts.name),
		},
	})
	if err != nil {
		return nil, err
	}
	config, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	config = config.DeepCopy()
	config.Created = v1.Time{Time: opts.created}
	config.OS = opts.platform.OS
	config.Architecture = opts.platform.Architecture
	config.Variant = opts.platform.Variant
	config.Config = v1.Config{User: pluginUser, Entrypoint: entrypoint, Labels: labels}
	if img, err = mutate.ConfigFile(img, config); err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}

	layoutDir := filepath.Join(opts.out, "layout")
	if err := os.RemoveAll(layoutDir); err != nil {
		return nil, err
	}
	written, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return nil, err
	}
	if err := written.AppendImage(img, layout.WithAnnotations(map[string]string{refNameAnnotation: opts.version}), layout.WithPlatform(opts.platform)); err != nil {
		return nil, fmt.Errorf("writing the OCI layout: %w", err)
	}
	if err := normalizeModes(layoutDir); err != nil {
		return nil, err
	}
	archive := filepath.Join(opts.out, "image.tar")
	archiveBytes, err := writeArchive(layoutDir, archive, opts.created)
	if err != nil {
		return nil, fmt.Errorf("writing the OCI archive: %w", err)
	}
	layerDigest, err := layer.Digest()
	if err != nil {
		return nil, err
	}
	layerBytes, err := layer.Size()
	if err != nil {
		return nil, err
	}
	summary := &imageSummary{
		Name: opts.name, Ref: opts.version, Digest: digest.String(), Platform: opts.platform.String(),
		Created: opts.created.Format(time.RFC3339), User: pluginUser, Entrypoint: entrypoint, Labels: labels,
		Layout: layoutDir, Archive: archive, ArchiveBytes: archiveBytes,
		LayerDigest: layerDigest.String(), LayerBytes: layerBytes, UncompressedBytes: layerInfo.Size(), Files: files,
	}
	raw, err := json.MarshalIndent(summary, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(opts.out, "image.json"), append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return summary, nil
}

// elfMachines maps image architectures to the ELF machine their executables declare.
var elfMachines = map[string]elf.Machine{
	"amd64":   elf.EM_X86_64,
	"arm64":   elf.EM_AARCH64,
	"ppc64le": elf.EM_PPC64,
	"s390x":   elf.EM_S390,
	"riscv64": elf.EM_RISCV,
}

// checkExecutable refuses a file that is not a regular, executable ELF file for the platform; with
// static, also one that needs a dynamic loader (the copier runs in an image without a C library).
func checkExecutable(file string, platform v1.Platform, static bool) error {
	info, err := os.Lstat(file)
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", file)
	}
	if info.Mode()&0o100 == 0 {
		return fmt.Errorf("%s is not executable", file)
	}
	binary, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", file, err)
	}
	defer binary.Close()
	want, known := elfMachines[platform.Architecture]
	if !known {
		return fmt.Errorf("platform %s is not supported", platform.String())
	}
	if binary.Machine != want {
		return fmt.Errorf("%s is built for %s, not %s", file, binary.Machine, platform.String())
	}
	if static {
		for _, prog := range binary.Progs {
			if prog.Type == elf.PT_INTERP {
				return fmt.Errorf("%s is dynamically linked; build it with CGO_ENABLED=0", file)
			}
		}
	}
	return nil
}

// pluginEntries lists dir as the layer entries under plugins/NAME/. Only NAME itself may be
// executable: Velero's server starts every file with an execute bit under its plugin directory (and
// every symbolic link, and every *.exe) and stops at the first that is not a plugin, so anything else
// with one is refused, not silently fixed.
func pluginEntries(dir, name string) ([]entry, error) {
	root := path.Join("plugins", name)
	var entries []entry
	var refused []string
	err := filepath.WalkDir(dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, file)
		if err != nil {
			return err
		}
		member := path.Join(root, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			entries = append(entries, entry{name: member + "/", mode: 0o755})
		case mode.IsRegular() && rel == name:
			entries = append(entries, entry{name: member, source: file, mode: 0o755})
		case mode.IsRegular() && mode&0o111 != 0:
			refused = append(refused, fmt.Sprintf("%s (mode %04o: only %s may be executable)", rel, mode.Perm(), name))
		case mode.IsRegular() && strings.EqualFold(filepath.Ext(rel), ".exe"):
			refused = append(refused, fmt.Sprintf("%s (Velero starts every *.exe file as a plugin)", rel))
		case mode.IsRegular():
			entries = append(entries, entry{name: member, source: file, mode: 0o644})
		case mode&fs.ModeSymlink != 0:
			refused = append(refused, fmt.Sprintf("%s (a symbolic link: Velero starts every link as a plugin)", rel))
		default:
			refused = append(refused, fmt.Sprintf("%s (unsupported file type %s)", rel, mode.Type()))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%s: refused: %s", dir, strings.Join(refused, "; "))
	}
	return entries, nil
}

// writeLayerTar writes the entries as an uncompressed tar owned by root, every timestamp mtime, and
// returns the regular files with their SHA-256.
func writeLayerTar(w io.Writer, entries []entry, mtime time.Time) ([]fileSummary, error) {
	tw := tar.NewWriter(w)
	var files []fileSummary
	for _, e := range entries {
		header := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Typeflag: tar.TypeDir}
		if e.source == "" {
			if err := tw.WriteHeader(header); err != nil {
				return nil, err
			}
			continue
		}
		file, err := os.Open(e.source)
		if err != nil {
			return nil, err
		}
		info, err := file.Stat()
		if err != nil {
			file.Close()
			return nil, err
		}
		header.Typeflag, header.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(header); err != nil {
			file.Close()
			return nil, err
		}
		hash := sha256.New()
		n, err := io.Copy(io.MultiWriter(tw, hash), file)
		file.Close()
		if err != nil {
			return nil, err
		}
		if n != info.Size() {
			return nil, fmt.Errorf("%s changed size while it was read", e.source)
		}
		files = append(files, fileSummary{Path: "/" + e.name, Mode: fmt.Sprintf("%04o", e.mode), Size: n, SHA256: hex.EncodeToString(hash.Sum(nil))})
	}
	return files, tw.Close()
}

// writeArchive writes the OCI layout directory as an OCI archive (a tar of the layout): members in
// name order, owned by root, files 0644 and directories 0755, every timestamp mtime. It returns the
// archive's size.
func writeArchive(layoutDir, archive string, mtime time.Time) (int64, error) {
	var names []string
	err := filepath.WalkDir(layoutDir, func(file string, d fs.DirEntry, err error) error {
		if err != nil || file == layoutDir {
			return err
		}
		rel, err := filepath.Rel(layoutDir, file)
		if err == nil {
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	sort.Strings(names)
	tmp, err := os.CreateTemp(filepath.Dir(archive), ".archive-*.tar")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	for _, name := range names {
		info, err := os.Lstat(filepath.Join(layoutDir, filepath.FromSlash(name)))
		if err != nil {
			tmp.Close()
			return 0, err
		}
		header := &tar.Header{Name: name + "/", Mode: 0o755, ModTime: mtime, Typeflag: tar.TypeDir}
		if !info.IsDir() {
			header = &tar.Header{Name: name, Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg, Size: info.Size()}
		}
		if err := tw.WriteHeader(header); err != nil {
			tmp.Close()
			return 0, err
		}
		if !info.IsDir() {
			if err := copyFileInto(tw, filepath.Join(layoutDir, filepath.FromSlash(name))); err != nil {
				tmp.Close()
				return 0, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		tmp.Close()
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp.Name(), archive); err != nil {
		return 0, err
	}
	info, err := os.Stat(archive)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// normalizeModes makes the files of dir 0644 and its directories 0755, whatever the umask was.
func normalizeModes(dir string) error {
	return filepath.WalkDir(dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(file, 0o755)
		}
		return os.Chmod(file, 0o644)
	})
}

func copyFileInto(w io.Writer, file string) error {
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = io.Copy(w, in)
	return err
}
