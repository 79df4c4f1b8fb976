//go:build tools

// Pins the commands this module builds, so `go mod tidy` keeps their dependencies.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
