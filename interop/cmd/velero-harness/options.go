package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"
)

// objectStoreTarget is one --object-store flag: a plugin name and the config its Init receives.
type objectStoreTarget struct {
	name   string
	config map[string]string
	bucket string
	prefix string
}

// snapshotTarget is the --volume-snapshotter group of flags.
type snapshotTarget struct {
	name       string
	config     map[string]string
	volumeID   string
	volumeAZ   string
	volumeType string
	iops       *int64
	pvTemplate string
}

type options struct {
	pluginDir      string
	logLevel       logrus.Level
	objectStores   []objectStoreTarget
	snapshotter    *snapshotTarget
	restoreTimeout time.Duration
}

func parseOptions(args []string) (*options, error) {
	flags := pflag.NewFlagSet("velero-harness run", pflag.ContinueOnError)
	flags.SetOutput(os.Stderr)
	pluginDir := flags.String("plugin-dir", "", "directory whose executables are the plugins (Velero's --plugin-dir)")
	logLevel := flags.String("log-level", "info", "log level of the harness and of the plugins (Velero's --log-level)")
	stores := flags.StringArray("object-store", nil, `NAME=CONFIG_JSON: an ObjectStore to test; CONFIG_JSON holds "bucket" and optionally "prefix"`)
	snapshotter := flags.String("volume-snapshotter", "", "NAME of a VolumeSnapshotter to test")
	snapshotterConfig := flags.String("volume-snapshotter-config", "{}", "CONFIG_JSON for the VolumeSnapshotter's Init")
	volumeID := flags.String("volume-id", "", "an existing volume the VolumeSnapshotter snapshots")
	volumeAZ := flags.String("volume-az", "", "that volume's availability zone")
	volumeType := flags.String("volume-type", "", "that volume's type, as GetVolumeInfo must report it")
	volumeIOPS := flags.Int64("volume-iops", -1, "that volume's IOPS, as GetVolumeInfo must report it (-1: none)")
	pvTemplate := flags.String("pv-template", "", `PersistentVolume JSON the plugin owns; "${volumeId}" is replaced by the volume ID`)
	restoreTimeout := flags.Duration("restore-timeout", time.Minute, "how long CreateVolumeFromSnapshot is retried while the snapshot is not ready")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if flags.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flags.Args())
	}
	if *pluginDir == "" {
		return nil, errors.New("--plugin-dir is required")
	}
	if info, err := os.Stat(*pluginDir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("--plugin-dir %q is not a directory", *pluginDir)
	}
	level, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	out := &options{pluginDir: *pluginDir, logLevel: level, restoreTimeout: *restoreTimeout}
	for _, flag := range *stores {
		name, configJSON, found := strings.Cut(flag, "=")
		if !found || name == "" {
			return nil, fmt.Errorf("--object-store %q: want NAME=CONFIG_JSON", flag)
		}
		config, err := parseConfig(configJSON)
		if err != nil {
			return nil, fmt.Errorf("--object-store %s: %w", name, err)
		}
		if config["bucket"] == "" {
			return nil, fmt.Errorf(`--object-store %s: the config must hold "bucket" (Velero passes the bucket in the config)`, name)
		}
		out.objectStores = append(out.objectStores, objectStoreTarget{name: name, config: config, bucket: config["bucket"], prefix: config["prefix"]})
	}
	if *snapshotter != "" {
		config, err := parseConfig(*snapshotterConfig)
		if err != nil {
			return nil, fmt.Errorf("--volume-snapshotter-config: %w", err)
		}
		if *volumeID == "" {
			return nil, errors.New("--volume-snapshotter needs --volume-id (an existing volume to snapshot)")
		}
		target := &snapshotTarget{name: *snapshotter, config: config, volumeID: *volumeID, volumeAZ: *volumeAZ, volumeType: *volumeType}
		if *volumeIOPS >= 0 {
			iops := *volumeIOPS
			target.iops = &iops
		}
		if *pvTemplate != "" {
			if !strings.Contains(*pvTemplate, "${volumeId}") {
				return nil, errors.New(`--pv-template must contain "${volumeId}"`)
			}
			if err := json.Unmarshal([]byte(strings.ReplaceAll(*pvTemplate, "${volumeId}", "x")), &map[string]any{}); err != nil {
				return nil, fmt.Errorf("--pv-template is not a JSON object: %w", err)
			}
			target.pvTemplate = *pvTemplate
		}
		out.snapshotter = target
	}
	if len(out.objectStores) == 0 && out.snapshotter == nil {
		return nil, errors.New("nothing to test: give --object-store and/or --volume-snapshotter")
	}
	return out, nil
}

// parseConfig reads a JSON object of strings (Velero's config maps hold strings only).
func parseConfig(text string) (map[string]string, error) {
	var raw map[string]any
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, fmt.Errorf("config is not a JSON object: %w", err)
	}
	config := make(map[string]string, len(raw))
	for key, value := range raw {
		s, ok := value.(string)
		if !ok {
			return nil, fmt.Errorf("config key %q: want a string (Velero's config values are strings), got %T", key, value)
		}
		config[key] = s
	}
	return config, nil
}

// persistentVolume builds the PV for volumeID from the template (or a CSI PV of the local plugin).
func (t *snapshotTarget) persistentVolume(volumeID string) (map[string]any, error) {
	template := `{"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"harness-pv"},"spec":{"csi":{"driver":"local.stowage.io","volumeHandle":"${volumeId}"}}}`
	if t.pvTemplate != "" {
		template = t.pvTemplate
	}
	quoted, err := json.Marshal(volumeID)
	if err != nil {
		return nil, err
	}
	var pv map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(template, "${volumeId}", string(quoted[1:len(quoted)-1]))), &pv); err != nil {
		return nil, err
	}
	return pv, nil
}
