package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrContainerfile is wrapped by every error ParseContainerfile returns.
var ErrContainerfile = errors.New("containerfile")

// Instruction is one instruction of a Containerfile.
type Instruction struct {
	// Line is the line it starts on (1-based).
	Line int
	// Cmd is the instruction's name in upper case (FROM, COPY, ...).
	Cmd string
	// Args is the rest, continuation lines joined with single spaces.
	Args string
	// JSON is the exec form's arguments when Args is a JSON array of
	// strings, else nil.
	JSON []string
}

// ParseContainerfile splits a Containerfile (Dockerfile syntax) into its
// instructions: '#' lines and blank lines are skipped, a line ending in a
// backslash continues on the next one (comment lines inside are skipped,
// as the builders do). An instruction without arguments, or one that ends
// in a continuation at the end of the file, is an error. Parser
// directives and heredocs are not supported (this project's file has
// none).
func ParseContainerfile(b []byte) ([]Instruction, error) {
	var (
		out  []Instruction
		cur  strings.Builder
		from int
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if cur.Len() == 0 {
			from = n
		} else {
			cur.WriteByte(' ')
		}
		body, cont := strings.CutSuffix(line, `\`)
		cur.WriteString(strings.TrimSpace(body))
		if cont {
			continue
		}
		in, err := instruction(from, cur.String())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrContainerfile, err)
	}
	if cur.Len() != 0 {
		return nil, fmt.Errorf("%w: line %d: continuation at the end of the file", ErrContainerfile, from)
	}
	return out, nil
}

func instruction(line int, s string) (Instruction, error) {
	cmd, args, _ := strings.Cut(s, " ")
	args = strings.TrimSpace(args)
	if args == "" {
		return Instruction{}, fmt.Errorf("%w: line %d: %s without arguments", ErrContainerfile, line, cmd)
	}
	in := Instruction{Line: line, Cmd: strings.ToUpper(cmd), Args: args}
	if strings.HasPrefix(args, "[") {
		var v []string
		if err := json.Unmarshal([]byte(args), &v); err == nil {
			in.JSON = v
		}
	}
	return in, nil
}

// Find returns the instructions named cmd (upper case), in order.
func Find(ins []Instruction, cmd string) []Instruction {
	var out []Instruction
	for _, in := range ins {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// CopySources returns the sources of a COPY or ADD instruction: every
// argument but the last, flags (--chown=..., --from=...) left out.
func CopySources(in Instruction) []string {
	words := in.JSON
	if words == nil {
		words = strings.Fields(in.Args)
	}
	var args []string
	for _, w := range words {
		if !strings.HasPrefix(w, "--") {
			args = append(args, w)
		}
	}
	if len(args) < 2 {
		return nil
	}
	return args[:len(args)-1]
}
