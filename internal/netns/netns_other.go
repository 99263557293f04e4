//go:build !linux

package netns

import (
	"errors"
	"fmt"
)

// Do fails: network namespaces are Linux's.
func Do(name string, fn func() error) error {
	return fmt.Errorf("joining network namespace %s: %w", name, errors.ErrUnsupported)
}
