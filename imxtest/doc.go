// Package imxtest is the in-process test harness of imx: real servers on
// loopback sockets, started by a test and stopped by its cleanup, so that
// tests exercise the same code paths as production over real sockets.
//
// Today it holds a real authoritative DNS server ([StartDNS]) that serves the
// _imx._tcp SRV records and the address records of a zone-less test world;
// it later grows whole IMX domains (several servers in one process) that
// publish themselves in it.
//
// imxtest is imported only by _test.go files (docs/architecture.md).
package imxtest
