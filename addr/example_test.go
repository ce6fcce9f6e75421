package addr_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imxproject/imx/addr"
)

func ExampleParse() {
	for _, s := range []string{
		"Alice@Example.COM",
		"ＡＬＩＣＥ@example.com",
		"bob@Bücher.example",
		"carol@example.com.",
		"dave@alpha.localhost",
	} {
		a, err := addr.Parse(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s -> %s (local %q, domain %q)\n", s, a, a.Local(), a.Domain())
	}
	// Output:
	// Alice@Example.COM -> alice@example.com (local "alice", domain "example.com")
	// ＡＬＩＣＥ@example.com -> alice@example.com (local "alice", domain "example.com")
	// bob@Bücher.example -> bob@xn--bcher-kva.example (local "bob", domain "xn--bcher-kva.example")
	// carol@example.com. -> carol@example.com (local "carol", domain "example.com")
	// dave@alpha.localhost -> dave@alpha.localhost (local "dave", domain "alpha.localhost")
}

func ExampleParse_errors() {
	for _, s := range []string{
		"alice",
		"a@b@example.com",
		"a b@example.com",
		"bob@-x.example",
		"bob@192.0.2.1",
	} {
		_, err := addr.Parse(s)
		fmt.Println(err)
		if errors.Is(err, addr.ErrIPLiteral) {
			fmt.Println("  (an IMX domain is a DNS name)")
		}
	}
	// Output:
	// addr: no at-sign: "alice"
	// addr: more than one at-sign: "a@b@example.com"
	// addr: invalid local part: white space U+0020: "a b@example.com"
	// addr: invalid domain: label "-x" begins with a hyphen: "bob@-x.example"
	// addr: IP address literal as domain: last label "1" is a number: "bob@192.0.2.1"
	//   (an IMX domain is a DNS name)
}

func ExampleAddress_Equal() {
	a := addr.MustParse("Alice@EXAMPLE.com")
	b := addr.MustParse("alice@example.com.")
	fmt.Println(a.Equal(b), a == b)

	// Addresses are comparable, so they can be map keys.
	unread := map[addr.Address]int{a: 1}
	unread[b]++
	fmt.Println(unread)
	// Output:
	// true true
	// map[alice@example.com:2]
}

func ExampleAddress_MarshalText() {
	type message struct {
		From addr.Address `json:"from"`
		To   addr.Address `json:"to"`
	}
	var m message
	if err := json.Unmarshal([]byte(`{"from":"Alice@Example.COM","to":"bob@bücher.example"}`), &m); err != nil {
		fmt.Println(err)
		return
	}
	out, _ := json.Marshal(m)
	fmt.Println(string(out))

	err := json.Unmarshal([]byte(`{"from":"alice"}`), &m)
	fmt.Println(err, errors.Is(err, addr.ErrNoAt))
	// Output:
	// {"from":"alice@example.com","to":"bob@xn--bcher-kva.example"}
	// addr: no at-sign: "alice" true
}

func ExampleParseDomain() {
	for _, s := range []string{"Example.COM.", "bücher.example", "localhost", "[::1]"} {
		d, err := addr.ParseDomain(s)
		fmt.Printf("%q %v\n", d, err)
	}
	// Output:
	// "example.com" <nil>
	// "xn--bcher-kva.example" <nil>
	// "localhost" <nil>
	// "" addr: IP address literal as domain: address literal in brackets: "[::1]"
}
