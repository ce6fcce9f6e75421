package message_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/message"
)

// The originating server builds the message from what the client sent; the
// receiving server checks it against the envelope and the authenticated
// domain, and keeps the canonical form.
func Example() {
	alice := addr.MustParse("alice@alpha.example")
	bob := addr.MustParse("bob@beta.example")
	b := message.Builder{Now: func() time.Time { return time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC) }}
	mime, err := b.Build(message.Draft{
		From:        alice,
		To:          bob,
		ContentType: message.HTMLLite,
		Body:        "<B>Hello</B> Bob!<script>alert(1)</script>",
		XHeaders:    []message.Header{{Name: "x-client", Value: "imx-web"}},
		ID:          []byte{0x01, 0x93, 0x5b, 0x10},
	}, 65536)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, line := range strings.Split(string(mime), "\r\n") {
		fmt.Println(line)
	}

	m, _, err := message.Parse(mime, message.Envelope{From: alice, To: bob}, "alpha.example", 65536)
	fmt.Println("--")
	fmt.Println(m.From, m.ContentType, m.Body, err)

	_, _, err = message.Parse(mime, message.Envelope{From: alice, To: bob}, "gamma.example", 65536)
	fmt.Println(err, "->", message.Status(err))
	// Output:
	// From: alice@alpha.example
	// To: bob@beta.example
	// Date: Sat, 14 Mar 2026 15:09:26 +0000
	// Message-ID: <01935b10@alpha.example>
	// MIME-Version: 1.0
	// Content-Type: text/html-lite; charset=utf-8
	// Content-Transfer-Encoding: 8bit
	// X-Client: imx-web
	//
	// <b>Hello</b> Bob!
	// --
	// alice@alpha.example text/html-lite <b>Hello</b> Bob! <nil>
	// message: sender domain not authenticated: sender alice@alpha.example, connection authenticated for "gamma.example" -> imx: not-authorized
}

func ExampleSanitizeHTMLLite() {
	fmt.Println(message.SanitizeHTMLLite(`<B onclick="steal()">Hi</B> <a href="javascript:alert(1)">x</a> <a href="https://example.com" target="_blank">y</a><img src=x onerror=alert(1)><p>unclosed`))
	// Output:
	// <b>Hi</b> x <a href="https://example.com" rel="nofollow noopener noreferrer">y</a><p>unclosed</p>
}
