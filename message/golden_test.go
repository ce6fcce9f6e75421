package message

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/imxproject/imx/addr"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/golden")

// goldenDrafts are built with the test clock and compared byte for byte with
// testdata/golden/NAME.msg.
var goldenDrafts = []struct {
	name  string
	draft Draft
}{
	{"plain", Draft{From: alice, To: bob, ID: testID,
		Body: "Hello Bob! This paragraph is sent as one long line, as section 5 of the draft asks: the receiving client wraps it to fit its window, however small that window is."}},
	{"html-lite", Draft{From: alice, To: bob, ID: testID, ContentType: HTMLLite,
		Body: "<B>Hello</B> <I>Bob</I>,\n<p onclick=\"steal()\">see <a href=\"https://example.com/x?a=1&b=2\" target=\"_blank\">this</a></p><script>alert(1)</script><!-- hidden -->"}},
	{"x-headers", Draft{From: alice, To: bob, ID: []byte("m-2"),
		Body:     "line one\nline two\n\n\tindented\n",
		XHeaders: []Header{{"x-client", "imx-web 0.1"}, {"X-Thread", "t-17"}}}},
	{"idn", Draft{From: addr.MustParse("Jörg@Bücher.example"), To: addr.MustParse("ЮЛИЯ@пример.example"), ID: []byte{0xff},
		Body: "Grüße aus Köln — 你好 👋"}},
}

func TestGolden(t *testing.T) {
	for _, g := range goldenDrafts {
		t.Run(g.name, func(t *testing.T) {
			got, err := builder.Build(g.draft, 0)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", g.name+".msg")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Build differs from %s:\n got %q\nwant %q", path, got, want)
			}
			env := Envelope{From: g.draft.From, To: g.draft.To}
			_, canon, err := Parse(want, env, env.From.Domain(), 0)
			if err != nil {
				t.Fatalf("Parse(%s): %v", path, err)
			}
			if !bytes.Equal(canon, want) {
				t.Errorf("Parse(%s) is not canonical:\n got %q\nwant %q", path, canon, want)
			}
		})
	}
}
