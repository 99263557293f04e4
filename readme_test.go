package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestREADMEListsEveryVariable: every PODNS_* variable of podns and of podns webhook has a row in a
// configuration table of README.md.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, typ := range []reflect.Type{reflect.TypeFor[config](), reflect.TypeFor[webhookConfig]()} {
		for i := range typ.NumField() {
			name := envPrefix + strings.Split(typ.Field(i).Tag.Get("env"), ",")[0]
			if !strings.Contains(readme, "\n| `"+name+"` |") {
				t.Errorf("README.md: no configuration row for %s (%s.%s)", name, typ.Name(), typ.Field(i).Name)
			}
		}
	}
}
