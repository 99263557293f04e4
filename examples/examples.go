// Package examples holds the manifests users copy (the YAML files in this directory, checked by its
// tests). It embeds the native sidecar example so that `podns inject` and `podns webhook` add to a pod
// exactly what the example shows: the two cannot drift apart.
package examples

import _ "embed"

// NativeSidecar is native-sidecar.yaml: a Deployment whose pod runs podns as a native sidecar.
//
//go:embed native-sidecar.yaml
var NativeSidecar []byte
