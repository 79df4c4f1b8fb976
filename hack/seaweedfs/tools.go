//go:build tools

// Pins the command this module builds, so `go mod tidy` keeps its dependencies.
package tools

import (
	_ "github.com/seaweedfs/seaweedfs/weed"
)
