//go:build tools

// Package tools pins kwok for hack/build-tools.sh.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
