package dialback_test

import (
	"errors"
	"fmt"
	"log"
	"net/netip"

	"github.com/imxproject/imx/dialback"
)

// The whole §6.3.1 flow in one process: server B (b.example) has opened
// Connection 1 to server A (a.example), and A calls B back on Connection 2.
// The pair is always named in the direction of Connection 1: from
// b.example, to a.example.
func Example() {
	const from, to = "b.example", "a.example"

	// B: a key made on first run (LoadOrCreateKey in a server), an Issuer.
	key, err := dialback.NewKey()
	if err != nil {
		log.Fatal(err)
	}
	issuer, err := dialback.NewIssuer(key, dialback.IssuerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	// A: a Verifier.
	verifier, err := dialback.NewVerifier(dialback.VerifierConfig{})
	if err != nil {
		log.Fatal(err)
	}

	// Step 1, B on Connection 1 (B's connection number 7): send the token.
	token := issuer.Issue(from, to, 7)

	// Step 2, A: Connection 1 is A's connection 3 from 192.0.2.1. A resolves
	// b.example itself, opens Connection 2, coins a secret, and sends
	// token and secret to B on Connection 2.
	conn1 := dialback.ConnKey{ID: 3, Addr: netip.MustParseAddr("192.0.2.1")}
	secret, err := verifier.Begin(conn1, from, to)
	if err != nil {
		log.Fatal(err)
	}

	// Step 3, B on Connection 2: check the token, find the connection it
	// names, and send the secret back on that one.
	connID, err := issuer.Check(token, from, to)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("B returns the secret on its connection", connID)

	// Step 4, A on Connection 1: the secret is back.
	if err := verifier.Complete(conn1, from, to, secret); err != nil {
		log.Fatal(err)
	}
	fmt.Println("A trusts", from, "->", to, "on its connection", conn1.ID)

	// The same secret again is a replay.
	err = verifier.Complete(conn1, from, to, secret)
	fmt.Println("again:", errors.Is(err, dialback.ErrReplayed))

	// Output:
	// B returns the secret on its connection 7
	// A trusts b.example -> a.example on its connection 3
	// again: true
}
