package message

import (
	"strings"
	"testing"
)

// benchBodies are the bodies of the benchmarks: a 200-byte text/plain line
// and a 1 KB text/html-lite body with formatting and a link.
var benchBodies = []struct {
	name, ct, body string
}{
	{"plain-200B", TextPlain, strings.Repeat("Hello Bob, ", 18) + "see you soon"},
	{"html-lite-1KB", HTMLLite, strings.Repeat("<p><b>Hello</b> <i>Bob</i>, see <a href=\"https://example.com/page?x=1\">this page</a> &amp; reply.</p>\n", 12)[:1024]},
}

func BenchmarkBuild(b *testing.B) {
	for _, bb := range benchBodies {
		d := Draft{From: alice, To: bob, ContentType: bb.ct, Body: bb.body, ID: testID,
			XHeaders: []Header{{"X-Client", "imx-web"}}}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := builder.Build(d, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	for _, bb := range benchBodies {
		d := Draft{From: alice, To: bob, ContentType: bb.ct, Body: bb.body, ID: testID,
			XHeaders: []Header{{"X-Client", "imx-web"}}}
		mime, err := builder.Build(d, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(mime)))
			for b.Loop() {
				if _, _, err := Parse(mime, envelope, "alpha.example", 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
