// Package c2s is the client side of an imx server: the WebSocket endpoint
// of the client listener, which carries the IMX wire records one frame per
// binary message (docs/client-api.md), and the registry of the sessions
// logged in through it.
//
// # Connections
//
// [Handler] upgrades a request to a WebSocket with subprotocol imx.v1
// (mount it at [Path]) and runs a connection of package link over it,
// through a [FrameConn]: a message that is not exactly one frame fails the
// connection with CLOSE protocol-error. Client connections are many and
// mostly idle, so their link buffers are small (Config.Link.QueueLen,
// Config.Link.ReadBuffer) and written frames are not batched
// (link.Config.FramePerWrite); they end when their keepalive fails, never
// for being idle.
//
// # Sessions
//
// Before LOGIN a connection accepts only HELLO, LOGIN, PING and CLOSE;
// anything else is answered not-authorized. LOGIN presents a password or a
// session token to the [Authenticator]; only users of Config.Domains may
// log in, and three failed logins close the connection with auth-failed.
// Each login is a session; a user may have several. SEND goes to the
// [Router] on a worker goroutine (at most Config.MaxSendsInFlight per
// session; more are answered busy) and the router's final result goes back
// with the SEND's tag. The workers are shared by the sessions and kept
// between SENDs, so that a deep Router finds their stacks grown; one idle
// for Config.WorkerIdle exits, so an idle server holds none.
//
// [Handler.Deliver] hands an incoming message to every session of its
// recipient, each as a MESSAGE request with a fresh tag, and reports how
// many took it; the client answers RESULT ok, which c2s waits for without
// holding the delivery up. A session that does not keep up (its queue
// full, or too many messages unacknowledged) is closed with CLOSE busy.
//
// # Shutdown
//
// [Handler.Shutdown] refuses new connections and SENDs, waits for the
// SENDs in flight to get their results, then closes every connection with
// CLOSE shutting-down and waits for them and the workers to end.
//
// c2s does not import the store, the router or s2s: it declares the small
// interfaces it consumes in interface.go, and package server wires them.
package c2s
