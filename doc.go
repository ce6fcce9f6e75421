// Package imx is the root of the imx module, a Go implementation of the IMX
// architecture (draft-aol-imx-00): instant messaging and presence federated
// server to server, the way SMTP servers exchange mail.
//
// The packages are described in docs/architecture.md; the wire protocol in
// docs/protocol.md. This package holds no code, only repository-wide tests
// such as the import-tier check.
package imx
