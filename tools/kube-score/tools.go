//go:build tools

// Package tools pins kube-score for hack/build-tools.sh.
package tools

import (
	_ "github.com/zegl/kube-score/cmd/kube-score"
)
