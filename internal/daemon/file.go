package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// ParseFile reads a configuration file: one "key = value" per line, keys
// named like the long options (Keys), blank lines and lines starting with
// '#' ignored. "rule" may appear several times; any other key at most once.
// It returns the settings in file order, each validated with Set on a
// scratch Config, so that a bad file is refused as a whole with its line
// number.
func ParseFile(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return parseFileBytes(path, b)
}

func parseFileBytes(name string, b []byte) ([][2]string, error) {
	var out [][2]string
	seen := map[string]int{}
	var scratch Config
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %s:%d: want key = value", ErrUsage, name, n)
		}
		if !slices.Contains(Keys, k) {
			return nil, fmt.Errorf("%w: %s:%d: unknown key %q", ErrUsage, name, n, k)
		}
		if prev, dup := seen[k]; dup && k != "rule" {
			return nil, fmt.Errorf("%w: %s:%d: %q already set on line %d", ErrUsage, name, n, k, prev)
		}
		seen[k] = n
		v = strings.TrimSpace(v)
		if err := scratch.Set(k, v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		out = append(out, [2]string{k, v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config file %s: %w", name, err)
	}
	_, open := seen["fail-open"]
	_, closed := seen["fail-closed"]
	if open && closed {
		return nil, fmt.Errorf("%w: %s: fail-open and fail-closed both set", ErrUsage, name)
	}
	return out, nil
}
