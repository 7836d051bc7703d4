package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vmware-tanzu/velero/pkg/plugin/clientmgmt"
	"github.com/vmware-tanzu/velero/pkg/plugin/clientmgmt/process"
	"github.com/vmware-tanzu/velero/pkg/plugin/framework/common"
	"github.com/vmware-tanzu/velero/pkg/plugin/velero"
	vsv1 "github.com/vmware-tanzu/velero/pkg/plugin/velero/volumesnapshotter/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	// largeObjectSize spans several of the Go client's 1 MiB PutObject chunks and a partial one.
	largeObjectSize = 5<<20 + 123
	signedURLTTL    = 10 * time.Minute
)

// run discovers the plugins and runs every requested round trip.
func run(o *options) *report {
	r := newReport(o.pluginDir)
	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(o.logLevel)

	// Velero's server: process.NewRegistry over --plugin-dir, DiscoverPlugins (which also starts
	// os.Args[0] run-plugins), then a manager per reconcile/backup/restore.
	registry := process.NewRegistry(o.pluginDir, logger, o.logLevel)
	if err := registry.DiscoverPlugins(); err != nil {
		r.add(step{Name: "discover"}, err)
		return r
	}
	listing := map[string][]map[string]string{}
	for _, kind := range []common.PluginKind{common.PluginKindObjectStore, common.PluginKindVolumeSnapshotter, common.PluginKindBackupItemAction, common.PluginKindRestoreItemAction, common.PluginKindDeleteItemAction, common.PluginKindItemBlockAction} {
		for _, id := range registry.List(kind) {
			listing[string(kind)] = append(listing[string(kind)], map[string]string{"name": id.Name, "command": id.Command})
		}
	}
	var missing []string
	for _, target := range o.objectStores {
		if _, err := registry.Get(common.PluginKindObjectStore, target.name); err != nil {
			missing = append(missing, "ObjectStore "+target.name)
		}
	}
	if o.snapshotter != nil {
		if _, err := registry.Get(common.PluginKindVolumeSnapshotter, o.snapshotter.name); err != nil {
			missing = append(missing, "VolumeSnapshotter "+o.snapshotter.name)
		}
	}
	discover := step{Name: "discover", OK: len(missing) == 0, Detail: listing}
	if len(missing) > 0 {
		discover.Error = fmt.Sprintf("not discovered in %s: %s", o.pluginDir, strings.Join(missing, ", "))
	}
	r.add(discover, nil)

	manager := clientmgmt.NewManager(logger, o.logLevel, registry)
	defer manager.CleanupClients()

	watchdog := time.AfterFunc(10*time.Minute, func() {
		r.add(step{Name: "watchdog"}, fmt.Errorf("the harness ran for 10 minutes; a plugin call hangs"))
		_ = r.write(os.Stdout)
		manager.CleanupClients()
		os.Exit(1)
	})
	defer watchdog.Stop()

	runID := randomHex(4)
	for _, target := range o.objectStores {
		s := &objectStoreRun{r: r, target: target, runID: runID}
		store, err := manager.GetObjectStore(target.name)
		if s.add(step{Name: "get-object-store", OK: true}, err) {
			s.run(store)
		}
	}
	if o.snapshotter != nil {
		s := &snapshotterRun{r: r, target: o.snapshotter, runID: runID, restoreTimeout: o.restoreTimeout}
		snapshotter, err := manager.GetVolumeSnapshotter(o.snapshotter.name)
		if s.add(step{Name: "get-volume-snapshotter", OK: true}, err) {
			s.run(snapshotter)
		}
	}
	return r
}

type objectStoreRun struct {
	r      *report
	target objectStoreTarget
	runID  string
}

func (s *objectStoreRun) add(st step, err error) bool {
	st.Plugin, st.Kind = s.target.name, string(common.PluginKindObjectStore)
	return s.r.add(st, err).OK
}

// fail records a step that found a wrong result (not an error from the call).
func (s *objectStoreRun) check(name string, ok bool, detail any, format string, args ...any) bool {
	st := step{Name: name, OK: ok, Detail: detail}
	if !ok {
		st.Error = fmt.Sprintf(format, args...)
	}
	return s.add(st, nil)
}

func (s *objectStoreRun) run(store velero.ObjectStore) {
	t := s.target
	if !s.add(step{Name: "init", OK: true, Detail: map[string]any{"keys": sortedKeys(t.config)}}, store.Init(t.config)) {
		return
	}
	// Velero's layout: <prefix>/backups/<backup>/<files>. A run-specific root keeps runs apart.
	root := path.Join(t.prefix, "velero-harness-"+s.runID)
	backups := root + "/backups/"
	large := randomBytes(largeObjectSize)
	small1, small2 := []byte(`{"kind":"Backup","name":"b1"}`), []byte(`{"kind":"Backup","name":"b2"}`)
	objects := []struct {
		key  string
		body []byte
	}{
		{backups + "b1/b1.tar.gz", large},
		{backups + "b1/velero-backup.json", small1},
		{backups + "b2/velero-backup.json", small2},
	}

	// put
	var putErr error
	var sizes []int
	for _, obj := range objects {
		if err := store.PutObject(t.bucket, obj.key, bytes.NewReader(obj.body)); err != nil {
			putErr = fmt.Errorf("PutObject %q (%d bytes): %w", obj.key, len(obj.body), err)
			break
		}
		sizes = append(sizes, len(obj.body))
	}
	s.add(step{Name: "put", OK: true, Detail: map[string]any{"keys": len(objects), "sizes": sizes}}, putErr)

	// put-empty: Velero's Go client sends no message at all for an empty body, so no server can know
	// the bucket or key. Consistent outcomes: refused and not stored, or stored as an empty object.
	emptyKey := backups + "empty"
	emptyErr := store.PutObject(t.bucket, emptyKey, bytes.NewReader(nil))
	stored, existsErr := store.ObjectExists(t.bucket, emptyKey)
	detail := map[string]any{"refused": emptyErr != nil, "stored": stored}
	if emptyErr != nil {
		detail["refusal"] = emptyErr.Error()
	}
	switch {
	case existsErr != nil:
		s.add(step{Name: "put-empty", Detail: detail}, fmt.Errorf("ObjectExists after the empty put: %w", existsErr))
	case emptyErr != nil && stored:
		s.check("put-empty", false, detail, "the empty put was refused but %q exists", emptyKey)
	case emptyErr == nil && !stored:
		s.check("put-empty", false, detail, "the empty put succeeded but %q does not exist", emptyKey)
	case emptyErr == nil:
		body, err := readObject(store, t.bucket, emptyKey)
		if err == nil && len(body) != 0 {
			err = fmt.Errorf("the empty object reads back as %d bytes", len(body))
		}
		s.add(step{Name: "put-empty", OK: true, Detail: detail}, err)
		_ = store.DeleteObject(t.bucket, emptyKey)
	default:
		s.add(step{Name: "put-empty", OK: true, Detail: detail}, nil)
	}

	// exists true / false
	exists, err := store.ObjectExists(t.bucket, objects[0].key)
	if err == nil {
		s.check("exists", exists, map[string]any{"key": objects[0].key, "exists": exists}, "ObjectExists(%q) = false after the put", objects[0].key)
	} else {
		s.add(step{Name: "exists"}, err)
	}
	missingKey := backups + "does-not-exist"
	exists, err = store.ObjectExists(t.bucket, missingKey)
	if err == nil {
		s.check("exists-missing", !exists, map[string]any{"key": missingKey, "exists": exists}, "ObjectExists(%q) = true for a key never written", missingKey)
	} else {
		s.add(step{Name: "exists-missing"}, err)
	}

	// get and compare
	var getErr error
	var got []map[string]any
	for _, obj := range objects {
		body, err := readObject(store, t.bucket, obj.key)
		if err != nil {
			getErr = fmt.Errorf("GetObject %q: %w", obj.key, err)
			break
		}
		if !bytes.Equal(body, obj.body) {
			getErr = fmt.Errorf("GetObject %q returned %d bytes (sha256 %s), want %d bytes (sha256 %s)", obj.key, len(body), sha(body), len(obj.body), sha(obj.body))
			break
		}
		got = append(got, map[string]any{"key": obj.key, "bytes": len(body), "sha256": sha(body)})
	}
	s.add(step{Name: "get", OK: true, Detail: got}, getErr)
	if _, err := readObject(store, t.bucket, missingKey); err == nil {
		s.check("get-missing", false, nil, "GetObject(%q) succeeded for a key never written", missingKey)
	} else {
		s.add(step{Name: "get-missing", OK: true, Detail: map[string]any{"error": err.Error()}}, nil)
	}

	// list common prefixes with a delimiter
	wantPrefixes := []string{backups + "b1/", backups + "b2/"}
	prefixes, err := store.ListCommonPrefixes(t.bucket, backups, "/")
	if err == nil {
		sorted := slices.Sorted(slices.Values(prefixes))
		s.check("list-common-prefixes", slices.Equal(sorted, wantPrefixes), map[string]any{"prefix": backups, "delimiter": "/", "prefixes": prefixes}, "ListCommonPrefixes(%q, \"/\") = %q, want %q", backups, prefixes, wantPrefixes)
	} else {
		s.add(step{Name: "list-common-prefixes"}, err)
	}

	// list objects (recursive)
	wantKeys := []string{objects[0].key, objects[1].key, objects[2].key}
	keys, err := store.ListObjects(t.bucket, backups)
	if err == nil {
		sorted := slices.Sorted(slices.Values(keys))
		s.check("list-objects", slices.Equal(sorted, wantKeys), map[string]any{"prefix": backups, "keys": keys}, "ListObjects(%q) = %q, want %q", backups, keys, wantKeys)
	} else {
		s.add(step{Name: "list-objects"}, err)
	}

	// signed URL, fetched over HTTP
	signed, err := store.CreateSignedURL(t.bucket, objects[1].key, signedURLTTL)
	if err == nil {
		s.signedURL(signed, objects[1].body)
	} else {
		s.add(step{Name: "signed-url"}, err)
	}

	// delete, then nothing is left
	var deleteErr error
	for _, obj := range objects {
		if err := store.DeleteObject(t.bucket, obj.key); err != nil {
			deleteErr = fmt.Errorf("DeleteObject %q: %w", obj.key, err)
			break
		}
	}
	s.add(step{Name: "delete", OK: true, Detail: map[string]any{"keys": len(objects)}}, deleteErr)
	still := []string{}
	var afterErr error
	for _, obj := range objects {
		exists, err := store.ObjectExists(t.bucket, obj.key)
		if err != nil {
			afterErr = err
			break
		}
		if exists {
			still = append(still, obj.key)
		}
	}
	if afterErr != nil {
		s.add(step{Name: "exists-after-delete"}, afterErr)
	} else {
		s.check("exists-after-delete", len(still) == 0, map[string]any{"remaining": still}, "still exist after DeleteObject: %q", still)
	}
	left, err := store.ListObjects(t.bucket, root+"/")
	if err == nil {
		s.check("list-after-delete", len(left) == 0, map[string]any{"keys": nonNil(left)}, "ListObjects(%q) after deleting everything = %q", root+"/", left)
	} else {
		s.add(step{Name: "list-after-delete"}, err)
	}
}

func (s *objectStoreRun) signedURL(signed string, want []byte) {
	u, err := url.Parse(signed)
	if err != nil {
		s.add(step{Name: "signed-url"}, fmt.Errorf("CreateSignedURL returned %q, not a URL: %w", signed, err))
		return
	}
	// The query string is a credential: report where the URL points, not the signature.
	detail := map[string]any{"scheme": u.Scheme, "host": u.Host, "path": u.Path, "queryKeys": sortedKeys(u.Query())}
	client := &http.Client{Timeout: time.Minute}
	res, err := client.Get(signed)
	if err != nil {
		s.add(step{Name: "signed-url", Detail: detail}, fmt.Errorf("GET the signed URL: %w", err))
		return
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	detail["status"] = res.StatusCode
	if err != nil {
		s.add(step{Name: "signed-url", Detail: detail}, fmt.Errorf("reading the signed URL's body: %w", err))
		return
	}
	s.check("signed-url", res.StatusCode == http.StatusOK && bytes.Equal(body, want), detail,
		"GET the signed URL: HTTP %d, %d bytes %q; want HTTP 200 and %q", res.StatusCode, len(body), truncate(body), want)
}

type snapshotterRun struct {
	r              *report
	target         *snapshotTarget
	runID          string
	restoreTimeout time.Duration
}

func (s *snapshotterRun) add(st step, err error) bool {
	st.Plugin, st.Kind = s.target.name, string(common.PluginKindVolumeSnapshotter)
	return s.r.add(st, err).OK
}

func (s *snapshotterRun) check(name string, ok bool, detail any, format string, args ...any) bool {
	st := step{Name: name, OK: ok, Detail: detail}
	if !ok {
		st.Error = fmt.Sprintf(format, args...)
	}
	return s.add(st, nil)
}

func (s *snapshotterRun) run(vs vsv1.VolumeSnapshotter) {
	t := s.target
	if !s.add(step{Name: "init", OK: true, Detail: map[string]any{"keys": sortedKeys(t.config)}}, vs.Init(t.config)) {
		return
	}

	// PV ID round trip: Velero reads the volume ID from the PV at backup and writes the restored one.
	pv, err := t.persistentVolume(t.volumeID)
	if err != nil {
		s.add(step{Name: "get-volume-id"}, err)
		return
	}
	id, err := vs.GetVolumeID(&unstructured.Unstructured{Object: pv})
	if err == nil {
		s.check("get-volume-id", id == t.volumeID, map[string]any{"volumeId": id}, "GetVolumeID = %q, want %q", id, t.volumeID)
	} else {
		s.add(step{Name: "get-volume-id"}, err)
	}
	foreign := map[string]any{"apiVersion": "v1", "kind": "PersistentVolume", "metadata": map[string]any{"name": "foreign"}, "spec": map[string]any{"hostPath": map[string]any{"path": "/srv/data"}}}
	id, err = vs.GetVolumeID(&unstructured.Unstructured{Object: foreign})
	if err == nil {
		s.check("get-volume-id-foreign", id == "", map[string]any{"volumeId": id}, "GetVolumeID on a hostPath PV = %q, want \"\" (not this plugin's)", id)
	} else {
		s.add(step{Name: "get-volume-id-foreign"}, err)
	}
	newID := "vol-harness-set-" + s.runID
	updated, err := vs.SetVolumeID(&unstructured.Unstructured{Object: pv}, newID)
	if err == nil {
		readBack, readErr := vs.GetVolumeID(updated)
		if readErr != nil {
			s.add(step{Name: "set-volume-id"}, fmt.Errorf("GetVolumeID on the PV SetVolumeID returned: %w", readErr))
		} else {
			s.check("set-volume-id", readBack == newID, map[string]any{"volumeId": readBack, "pv": updated.UnstructuredContent()}, "after SetVolumeID(%q), GetVolumeID = %q", newID, readBack)
		}
	} else {
		s.add(step{Name: "set-volume-id"}, err)
	}

	// GetVolumeInfo on the source volume
	volumeType, iops, err := vs.GetVolumeInfo(t.volumeID, t.volumeAZ)
	if err == nil {
		ok, why := s.matchInfo(volumeType, iops)
		s.check("get-volume-info", ok, infoDetail(t.volumeID, volumeType, iops), "GetVolumeInfo(%q): %s", t.volumeID, why)
	} else {
		s.add(step{Name: "get-volume-info"}, err)
	}

	// CreateSnapshot with the tags Velero sets
	tags := map[string]string{"velero.io/backup": "velero-harness-" + s.runID, "velero.io/pv": "harness-pv"}
	snapshotID, err := vs.CreateSnapshot(t.volumeID, t.volumeAZ, tags)
	if err == nil {
		s.check("create-snapshot", snapshotID != "", map[string]any{"snapshotId": snapshotID}, "CreateSnapshot returned an empty snapshot ID")
	} else {
		s.add(step{Name: "create-snapshot"}, err)
		return
	}

	// CreateVolumeFromSnapshot. Velero's interface has no snapshot status call; a restore normally
	// comes much later than the backup. Retry while the plugin says the snapshot is not ready.
	deadline := time.Now().Add(s.restoreTimeout)
	attempts := 0
	var restored string
	for {
		attempts++
		restored, err = vs.CreateVolumeFromSnapshot(snapshotID, volumeType, t.volumeAZ, iops)
		if err == nil || !notReady(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err == nil {
		s.check("create-volume-from-snapshot", restored != "" && restored != t.volumeID, map[string]any{"volumeId": restored, "attempts": attempts},
			"CreateVolumeFromSnapshot returned volume ID %q (source %q)", restored, t.volumeID)
		restoredType, restoredIOPS, infoErr := vs.GetVolumeInfo(restored, t.volumeAZ)
		if infoErr == nil {
			ok, why := s.matchInfo(restoredType, restoredIOPS)
			s.check("get-volume-info-restored", ok, infoDetail(restored, restoredType, restoredIOPS), "GetVolumeInfo(%q): %s", restored, why)
		} else {
			s.add(step{Name: "get-volume-info-restored"}, infoErr)
		}
	} else {
		s.add(step{Name: "create-volume-from-snapshot", Detail: map[string]any{"attempts": attempts}}, err)
	}

	// DeleteSnapshot
	s.add(step{Name: "delete-snapshot", OK: true, Detail: map[string]any{"snapshotId": snapshotID}}, vs.DeleteSnapshot(snapshotID))
}

func (s *snapshotterRun) matchInfo(volumeType string, iops *int64) (bool, string) {
	t := s.target
	if t.volumeType != "" && volumeType != t.volumeType {
		return false, fmt.Sprintf("type %q, want %q", volumeType, t.volumeType)
	}
	if t.iops != nil && (iops == nil || *iops != *t.iops) {
		return false, fmt.Sprintf("IOPS %s, want %d", iopsText(iops), *t.iops)
	}
	return true, ""
}

func infoDetail(volumeID, volumeType string, iops *int64) map[string]any {
	detail := map[string]any{"volumeId": volumeID, "volumeType": volumeType}
	if iops != nil {
		detail["iops"] = *iops
	}
	return detail
}

func iopsText(iops *int64) string {
	if iops == nil {
		return "unset"
	}
	return fmt.Sprint(*iops)
}

// notReady reports whether a CreateVolumeFromSnapshot error says the snapshot is still being taken.
func notReady(err error) bool {
	text := strings.ToLower(err.Error())
	return strings.Contains(text, "not ready") || strings.Contains(text, "not_ready") || strings.Contains(text, "pending")
}

func readObject(store velero.ObjectStore, bucket, key string) ([]byte, error) {
	rc, err := store.GetObject(bucket, key)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(rc)
	closeErr := rc.Close()
	if err != nil {
		return nil, err
	}
	return body, closeErr
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
