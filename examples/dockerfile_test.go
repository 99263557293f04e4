package examples_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// errDockerfile marks a Dockerfile whose final stage lacks what the examples rely on.
var errDockerfile = errors.New("dockerfile")

// imageFacts is what the examples must agree with in the final stage of the Dockerfile.
type imageFacts struct {
	entrypoint []string        // ENTRYPOINT in exec (JSON) form
	uid        int64           // numeric user of USER uid[:gid]
	gid        int64           // numeric group, or -1 when USER names none
	files      map[string]bool // destinations of the stage's COPY lines
}

// parseDockerfile reads the final stage of a Dockerfile: only the instructions the examples depend on
// (USER, ENTRYPOINT, COPY), enough to keep the two from drifting apart.
func parseDockerfile(r io.Reader) (imageFacts, error) {
	var f imageFacts
	lines, err := instructions(r)
	if err != nil {
		return f, err
	}
	user := ""
	for _, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(word) {
		case "FROM": // a new stage: only the last one is the image
			f, user = imageFacts{files: map[string]bool{}}, ""
		case "USER":
			user = rest
		case "ENTRYPOINT":
			f.entrypoint = nil
			if err := json.Unmarshal([]byte(rest), &f.entrypoint); err != nil {
				return f, fmt.Errorf("%w: ENTRYPOINT %s is not in exec form: %v", errDockerfile, rest, err)
			}
		case "COPY", "ADD":
			if fields := strings.Fields(rest); len(fields) >= 2 {
				f.files[fields[len(fields)-1]] = true
			}
		}
	}
	if len(f.entrypoint) == 0 {
		return f, fmt.Errorf("%w: the final stage has no ENTRYPOINT", errDockerfile)
	}
	if f.uid, f.gid, err = numericUser(user); err != nil {
		return f, err
	}
	return f, nil
}

// numericUser parses USER uid[:gid]; names are refused because the kubelet can verify runAsNonRoot only
// for a numeric user.
func numericUser(user string) (uid, gid int64, err error) {
	u, g, hasGroup := strings.Cut(user, ":")
	if uid, err = strconv.ParseInt(u, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%w: USER %q is not a numeric uid", errDockerfile, user)
	}
	gid = -1
	if hasGroup {
		if gid, err = strconv.ParseInt(g, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%w: USER %q is not a numeric gid", errDockerfile, user)
		}
	}
	return uid, gid, nil
}

// instructions returns the Dockerfile's instructions, one a line: comments dropped, continuation lines
// (a trailing backslash) joined.
func instructions(r io.Reader) ([]string, error) {
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	return out, nil
}
