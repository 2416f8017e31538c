//go:build tools

// Package tools pins the Dex server this module builds (`go build github.com/dexidp/dex/cmd/dex`
// from here). Dex's go.mod has no /v2 suffix, so the proxy serves no v2.x tags for it: it is
// required at the pseudo-version of the commit tagged v2.41.1, together with the published
// api/v2 module its gRPC API needs (Dex's own local `replace` of api/v2 does not apply to us).
package tools

import _ "github.com/dexidp/dex/cmd/dex"
