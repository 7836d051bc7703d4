package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
)

// step is one line of the report.
type step struct {
	// Name identifies the step ("discover", "put", "create-snapshot", ...).
	Name string `json:"name"`
	// Plugin is the plugin the step exercised ("" for discovery).
	Plugin string `json:"plugin,omitempty"`
	// Kind is ObjectStore or VolumeSnapshotter ("" for discovery).
	Kind string `json:"kind,omitempty"`
	OK   bool   `json:"ok"`
	// Detail holds what the step observed (values, sizes, IDs).
	Detail any `json:"detail,omitempty"`
	// Error is the failure, as Velero's client returned it or as the harness found it.
	Error string `json:"error,omitempty"`
}

type report struct {
	mu            sync.Mutex
	OK            bool   `json:"ok"`
	VeleroVersion string `json:"veleroVersion"`
	PluginDir     string `json:"pluginDir"`
	Steps         []step `json:"steps"`
}

func newReport(pluginDir string) *report {
	r := &report{OK: true, PluginDir: pluginDir, VeleroVersion: "unknown", Steps: []step{}}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/vmware-tanzu/velero" {
				r.VeleroVersion = dep.Version
			}
		}
	}
	return r
}

// add records a step; err (or a non-empty failure) makes it fail.
func (r *report) add(s step, err error) step {
	if err != nil {
		s.OK = false
		s.Error = err.Error()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.OK {
		r.OK = false
		if s.Error == "" {
			s.Error = "failed"
		}
	}
	r.Steps = append(r.Steps, s)
	return s
}

func (r *report) write(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}
