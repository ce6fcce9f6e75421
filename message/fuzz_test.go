package message

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// FuzzParse checks that Parse never panics, that every error it returns is
// one of the package's (Status maps it to a definite answer), and that what
// parses re-serializes into a canonical form that parses to the same message
// and to the same bytes. It also checks that the fast path of Parse agrees
// with the general one (checkFastPath) on the input, with the envelope alice
// to bob, at the input's own size limit, and with the envelope that the
// input's From and To lines name.
func FuzzParse(f *testing.F) {
	for _, g := range goldenDrafts {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", g.name+".msg"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimal + "hi"))
	f.Add([]byte(headerOf(HTMLLite, "X-A: 1") + "<b>x</b><script>y</script>"))
	for _, d := range []Draft{
		{From: alice, To: bob, ContentType: HTMLLite, Body: "<b>x</b> &amp; <a href=\"https://example.com/\">y</a>", ID: testID},
		{From: alice, To: bob, Body: "a\r\nb", XHeaders: []Header{{"X-A", "1"}, {"X-B", ""}, {"X-C-D", "é\tx"}}},
		{From: addr.MustParse("ÅSA@ÖRE.example"), To: bob, Body: "é"},
	} {
		b, err := builder.Build(d, 0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkFastPath(t, b, envelope, "alpha.example", 0)
		checkFastPath(t, b, envelope, "alpha.example", len(b))
		if env, ok := envelopeOf(b); ok {
			checkFastPath(t, b, env, env.From.Domain(), 0)
		}
		m, canon, err := Parse(b, envelope, "alpha.example", 0)
		if err != nil {
			if s := Status(err); s != wire.StatusBadRequest && s != wire.StatusNotAuthorized && s != wire.StatusTooLarge {
				t.Fatalf("Parse error %v maps to %v", err, s)
			}
			return
		}
		m2, canon2, err := Parse(canon, envelope, "alpha.example", 1<<30)
		if err != nil {
			t.Fatalf("Parse(canonical): %v\ninput     %q\ncanonical %q", err, b, canon)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("Parse(canonical) gives another message:\n got %+v\nwant %+v\ninput %q", m2, m, b)
		}
		if string(canon2) != string(canon) {
			t.Fatalf("canonical form is not a fixed point:\n once  %q\n twice %q", canon, canon2)
		}
	})
}

// FuzzSanitize checks that sanitizing is idempotent and that its output is
// valid UTF-8 of allowed characters with CRLF line ends, holds no <script
// and no element or attribute outside html-lite.
func FuzzSanitize(f *testing.F) {
	for _, tt := range sanitizeTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSanitized(t, s, SanitizeHTMLLite(s))
	})
}
