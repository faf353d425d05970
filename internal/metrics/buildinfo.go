package metrics

import (
	"runtime"
	"runtime/debug"
)

// BuildInfo is what tcpcrypt_build_info reports about the running binary.
type BuildInfo struct {
	// Version is the daemon's version: Options.Version when set (the
	// release stamped in at build time), else the main module's version
	// ("(devel)" for a build from a work tree).
	Version string
	// GoVersion is the Go release the binary was built with.
	GoVersion string
	// Revision is the VCS revision the binary was built from, with
	// "-dirty" appended when the work tree had changes; "" when the build
	// recorded none (go test binaries, -buildvcs=false).
	Revision string
}

// ReadBuildInfo returns the running binary's BuildInfo (runtime/debug's
// build information), with version as its Version when not "".
func ReadBuildInfo(version string) BuildInfo {
	bi := BuildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi
	}
	if bi.Version == "" {
		bi.Version = info.Main.Version
	}
	if info.GoVersion != "" {
		bi.GoVersion = info.GoVersion
	}
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified && bi.Revision != "" {
		bi.Revision += "-dirty"
	}
	return bi
}
