package client

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/message"
	"github.com/imxproject/imx/wire"
)

// canonicalMIME builds a message as an imx server writes it.
func canonicalMIME(tb testing.TB, contentType, body string, x ...message.Header) []byte {
	tb.Helper()
	bl := message.Builder{Now: func() time.Time { return time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC) }}
	b, err := bl.Build(message.Draft{
		From: addr.MustParse("alice@alpha.example"), To: addr.MustParse("bob@beta.example"),
		ContentType: contentType, Body: body, XHeaders: x,
		ID: []byte("0123456789abcdef"),
	}, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func incomingMessage(mime []byte) *wire.Message {
	return &wire.Message{From: "alice@alpha.example", To: "bob@beta.example", ID: []byte{1, 2, 3},
		MIME: mime, Attrs: []wire.Attr{{Name: "alias", Value: "Alice"}}}
}

// checkParse checks that parseIncoming, and parseMIMECanonical when it
// accepts mime, give what parseIncomingGeneral gives, and that
// parseMIMECanonical leaves the Incoming alone when it does not. It
// reports whether parseMIMECanonical accepted mime.
func checkParse(t *testing.T, mime []byte) bool {
	t.Helper()
	m := incomingMessage(mime)
	want := parseIncomingGeneral(m)
	if got := parseIncoming(m); !reflect.DeepEqual(got, want) {
		t.Errorf("MIME %q:\nparseIncoming        %#v\nparseIncomingGeneral %#v", mime, got, want)
	}
	fast := copyIncoming(m)
	if !fast.parseMIMECanonical() {
		if !reflect.DeepEqual(fast, copyIncoming(m)) {
			t.Errorf("MIME %q: parseMIMECanonical refused it but changed the Incoming: %#v", mime, fast)
		}
		return false
	}
	if !reflect.DeepEqual(fast, want) {
		t.Errorf("MIME %q:\nparseMIMECanonical %#v\nparseMIMEGeneral   %#v", mime, fast, want)
	}
	return true
}

const canonicalHead = "From: alice@alpha.example\r\n" +
	"To: bob@beta.example\r\n" +
	"Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n" +
	"Message-ID: <0123@alpha.example>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n"

// parseCases are MIME texts and whether the fast path takes them.
func parseCases(t testing.TB) []struct {
	name string
	mime string
	fast bool
} {
	return []struct {
		name string
		mime string
		fast bool
	}{
		{"built text/plain", string(canonicalMIME(t, "", "Hello Bob!\nSecond line.")), true},
		{"built html-lite", string(canonicalMIME(t, "text/html-lite", "<p>Hi <b>Bob</b></p>")), true},
		{"built with X- headers", string(canonicalMIME(t, "", "hi", message.Header{Name: "x-client", Value: "imx-go/0.1"}, message.Header{Name: "X-Empty"})), true},
		{"built empty body", string(canonicalMIME(t, "", "")), true},
		{"brief example", canonicalHead + "X-Something: value\r\n\r\nbody...", true},
		{"minimal", "From: a@x.example\r\n\r\nhi", true},
		{"empty body", canonicalHead + "\r\n", true},
		{"body with bare LF and CR", canonicalHead + "\r\na\nb\rc\r\n\r\n\n", true},
		{"duplicate headers", "X-A: 1\r\nX-B: 2\r\nX-A: 3\r\nx-a: 4\r\n\r\nbody", true},
		{"duplicate Content-Type", "Content-Type: text/html-lite\r\nContent-Type: text/plain\r\n\r\n<p>x</p>", true},
		{"lower-case names", "from: a@x.example\r\ncontent-type: text/html-lite; charset=utf-8\r\nmessage-id: <x@y>\r\nx-WEIRD-case: v\r\n\r\nb", true},
		{"no space after colon", "From:a@x.example\r\nDate:Sat, 14 Mar 2026 15:09:26 +0000\r\n\r\nb", true},
		{"spaces and tabs around value", "From:  \t a@x.example \t \r\nX-A:\tv\t\r\n\r\nb", true},
		{"trailing spaces", "From: a@x.example   \r\nContent-Type: text/plain; charset=utf-8 \r\n\r\nb", true},
		{"empty values", "X-A:\r\nX-B: \r\nX-C:\t\r\nContent-Type:\r\nDate: \r\n\r\nb", true},
		{"colon in value", "X-A: b: c:d\r\nX-B::\r\n\r\nb", true},
		{"non-ASCII value", "From: jürgen@x.example\r\nX-Name: Jürgen 🦫\r\n\r\nGrüße", true},
		{"invalid UTF-8 value", "X-A: \xff\xfe\r\n\r\n\xff", true},
		{"control characters in value", "X-A: a\x00b\x7f\x1b[0m\r\n\r\nb", true},
		{"token punctuation in name", "X-!#$%&'*+-.^_`|~09: v\r\n\r\nb", true},
		{"long header line", "X-Long: " + strings.Repeat("v", 9000) + "\r\nX-After: a\r\n\r\nb", true},
		{"long header line at buffer end", "X-Long: " + strings.Repeat("v", 4086) + "\r\n\r\nb", true},
		{"Text/Plain", "Content-Type: Text/Plain; charset=utf-8\r\n\r\nhi\r\n", true},
		{"quoted charset", "Content-Type: text/html-lite; charset=\"utf-8\"\r\n\r\nhi", true},
		{"no space before parameter", "Content-Type: text/plain;charset=utf-8\r\n\r\nhi", true},
		{"bad parameter", "Content-Type: text/plain; charset\r\n\r\nhi", true},
		{"bad media type", "Content-Type: text\r\n\r\nhi", true},
		{"bad media type with parameter", "Content-Type:  Text/Weird/ ; x=\r\n\r\nhi", true},
		{"multipart", "Content-Type: multipart/mixed; boundary=xyz\r\n\r\nhi", true},
		{"RFC 822 date", "Date: 26 Nov 2026 09:04:05 GMT\r\n\r\nhi", true},
		{"date with comment", "Date: Thu, 26 Nov 2026 10:04:05 +0100 (CET)\r\n\r\nhi", true},
		{"junk date", "Date: yesterday\r\n\r\nhi", true},

		{"folded header", "Subject: a\r\n b\r\n\r\nhi", false},
		{"folded with tab", "From: a@x.example\r\nX-A: a\r\n\tb\r\n\r\nhi", false},
		{"first line folded", " From: a@x.example\r\n\r\nhi", false},
		{"folded Content-Type", "Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nhi", false},
		{"LF only", "From: a@x.example\nTo: b@x.example\n\nhi\n", false},
		{"LF ending the header", "From: a@x.example\r\nTo: b@x.example\n\r\nhi", false},
		{"LF blank line", "From: a@x.example\r\n\nhi\r\n\r\n", false},
		{"bare LF in a line", "From: a@x.example\r\nX-A: a\nb\r\n\r\nhi", false},
		{"bare CR in a value", "X-A: a\rb\r\n\r\nhi", false},
		{"CR CR LF", "X-A: a\r\r\n\r\nhi", false},
		{"missing blank line", "From: a@x.example\r\nTo: b@x.example\r\n", false},
		{"missing final line end", "From: a@x.example\r\nTo: b@x.example", false},
		{"no header", "\r\nhi", false},
		{"only a blank line", "\r\n\r\n", false},
		{"empty", "", false},
		{"not MIME", "not a mime message", false},
		{"space before colon", "From : a@x.example\r\n\r\nhi", false},
		{"tab before colon", "From\t: a@x.example\r\n\r\nhi", false},
		{"space in name", "X A: v\r\n\r\nhi", false},
		{"empty name", ": v\r\nFrom: a@x.example\r\n\r\nhi", false},
		{"invalid name", "X(A): v\r\n\r\nhi", false},
		{"non-ASCII name", "X-Ä: v\r\n\r\nhi", false},
		{"NUL in name", "X-\x00: v\r\n\r\nhi", false},
		{"no colon", "From a@x.example\r\n\r\nhi", false},
	}
}

// TestParseIncomingFast: the fast path of parseIncoming takes the messages
// that servers write, and gives what net/mail gives for everything it
// takes.
func TestParseIncomingFast(t *testing.T) {
	for _, c := range parseCases(t) {
		t.Run(c.name, func(t *testing.T) {
			if fast := checkParse(t, []byte(c.mime)); fast != c.fast {
				t.Errorf("fast path taken: %v, want %v", fast, c.fast)
			}
		})
	}
	in := parseIncoming(incomingMessage(canonicalMIME(t, "text/html-lite", "<p>hi</p>")))
	if in.ContentType != "text/html-lite" || in.Body != "<p>hi</p>" || in.Header.Get("From") != "alice@alpha.example" ||
		!in.Date.Equal(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)) || in.Alias() != "Alice" {
		t.Errorf("parsed %#v", in)
	}
}

// FuzzParseIncoming: whenever the fast path of parseIncoming takes a
// message, it gives what net/mail gives.
//
//	go test ./client -run '^$' -fuzz FuzzParseIncoming -fuzztime 60s
func FuzzParseIncoming(f *testing.F) {
	for _, c := range parseCases(f) {
		// Long seeds, which TestParseIncomingFast has, make the fuzzer
		// spend its time minimizing their mutations.
		if len(c.mime) <= 1024 {
			f.Add([]byte(c.mime))
		}
	}
	f.Fuzz(func(t *testing.T, mime []byte) {
		checkParse(t, mime)
	})
}

// BenchmarkParseIncoming: parseIncoming of a short text/plain message in
// the canonical form, and the same without the fast path.
//
//	go test -run '^$' -bench ParseIncoming -benchtime 2s ./client
func BenchmarkParseIncoming(b *testing.B) {
	m := incomingMessage(canonicalMIME(b, "", "Hello Bob!"))
	for _, bc := range []struct {
		name  string
		parse func(*wire.Message) Incoming
	}{{"fast", parseIncoming}, {"general", parseIncomingGeneral}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(m.MIME)))
			b.ReportAllocs()
			for b.Loop() {
				bc.parse(m)
			}
		})
	}
}
