package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tcpcryptd/tcpcrypt/rules"
)

// stateVersion is the format version of the state file.
const stateVersion = 1

// ErrState matches errors about a state file that cannot be used.
var ErrState = errors.New("state file")

// stateFile is the JSON form of the state file:
//
//	{"version": 1, "rules": [{"port": 443, "side": "local", "mode": "required"}, ...]}
type stateFile struct {
	Version int            `json:"version"`
	Rules   []rules.Policy `json:"rules"`
}

// LoadState reads the rules kept in the state file at path. A missing file
// holds no rules. A file that does not parse, has another version or holds
// invalid rules is an error (wrapping ErrState): the daemon refuses to start
// rather than drop rules an administrator added.
func LoadState(path string) ([]rules.Policy, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	return parseState(path, b)
}

// parseState decodes and checks the contents b of the state file path.
func parseState(path string, b []byte) ([]rules.Policy, error) {
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrState, path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w %s: data after the JSON object", ErrState, path)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w %s: version %d, want %d", ErrState, path, st.Version, stateVersion)
	}
	if _, err := rules.Normalize(st.Rules); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrState, path, err)
	}
	return st.Rules, nil
}

// SaveState writes ps to the state file at path atomically: a temporary
// file in the same directory (created 0700 if missing) is written, synced,
// given mode 0600 and renamed over path, and the directory is synced. A
// reader sees the old file or the new one, never a part.
func SaveState(path string, ps []rules.Policy) error {
	if ps == nil {
		ps = []rules.Policy{}
	}
	b, err := json.MarshalIndent(stateFile{Version: stateVersion, Rules: ps}, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: encode: %w", ErrState, err)
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%w: write %s: %w", ErrState, path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(b); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: write %s: %w", ErrState, path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: the rename is durable once the directory is
		d.Close()
	}
	return nil
}
