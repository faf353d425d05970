// Package cliutil holds what the command-line tools share: the version
// flag's spelling and the control address of a daemon run in a named network
// namespace.
package cliutil

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"
)

// RunDir is the directory of the per-namespace control sockets: the daemon
// of namespace NAME (unit tcpcryptd@NAME.service) listens on
// RunDir/NAME/ctl.
const RunDir = "/run/tcpcrypt"

// ErrNetnsName reports a namespace name that cannot name a file in
// /run/netns.
var ErrNetnsName = errors.New("bad network namespace name")

var versionOnce sync.Once

// UseVersionFlag makes --version (and -V) the version flag of every
// urfave/cli App in the program, in place of the library's default
// --version/-v: in tcpcryptd -v means --verbose, so no tool uses -v for the
// version. Call it before running an App; it is safe to call more than once.
func UseVersionFlag() {
	versionOnce.Do(func() {
		cli.VersionFlag = &cli.BoolFlag{Name: "version", Aliases: []string{"V"},
			Usage: "print the version and exit", DisableDefaultText: true}
	})
}

// CheckNetnsName checks that name can be a network namespace of
// ip-netns(8): one path element, as in /run/netns/NAME.
func CheckNetnsName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("%w %q: want the name of a file in /run/netns", ErrNetnsName, name)
	}
	return nil
}

// NetnsAddress is the control socket of the daemon that runs in network
// namespace name (RunDir/name/ctl), the one tcpcryptd@name.service uses.
func NetnsAddress(name string) (string, error) {
	if err := CheckNetnsName(name); err != nil {
		return "", err
	}
	return filepath.Join(RunDir, name, "ctl"), nil
}

// ControlAddress picks the control address a client dials from its
// --address and --netns flags: the address, or the namespace's socket; ""
// (neither given) leaves the choice to ctl.Dial: $TCPCRYPT_CTL, else the
// default socket. Giving both flags is an error.
func ControlAddress(address, netns string) (string, error) {
	switch {
	case address != "" && netns != "":
		return "", errors.New("--address and --netns exclude each other")
	case address != "":
		return address, nil
	case netns != "":
		return NetnsAddress(netns)
	}
	return "", nil
}

// NetnsFlag is the --netns/-n flag of the client tools.
func NetnsFlag() cli.Flag {
	return &cli.StringFlag{Name: "netns", Aliases: []string{"n"}, Usage: "talk to the daemon of network namespace `NAME` (tcpcryptd@NAME.service), at " + RunDir + "/NAME/ctl"}
}
