package message

import (
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

const rel = ` rel="nofollow noopener noreferrer"`

var sanitizeTests = []struct {
	name, in, want string
}{
	{"plain text", "Hello Bob", "Hello Bob"},
	{"allowed tags", "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><s>x</s><code>c</code>", "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><s>x</s><code>c</code>"},
	{"blocks", "<p>one</p><blockquote>q</blockquote><pre>  x\n  y</pre>", "<p>one</p><blockquote>q</blockquote><pre>  x\r\n  y</pre>"},
	{"upper-case tags as the draft writes them", "<B>bold</B> <I>it</I><BR>", "<b>bold</b> <i>it</i><br>"},
	{"nested allowed tags kept", "<b><i><u>x</u></i></b>", "<b><i><u>x</u></i></b>"},
	{"br forms", "a<br>b<br/>c<br />d</br>e", "a<br>b<br>c<br>d" + "e"},

	{"script removed with its content", "hi<script>alert(1)</script>!", "hi!"},
	{"script in upper case", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>hi", "hi"},
	{"script split by a tag", "<scr<script>ipt>alert(1)</script>", "ipt&gt;alert(1)"},
	{"style removed with its content", "<style>body{display:none}</style>hi", "hi"},
	{"iframe removed with its content", "<iframe src=x>fallback</iframe>hi", "hi"},
	{"object", "<object data=x.swf><param name=a>t</object>hi", "hi"},
	{"template", "<template><b>x</b></template>hi", "hi"},
	{"onclick removed", `<b onclick="alert(1)">x</b>`, "<b>x</b>"},
	{"onerror with img", `<img src=x onerror="alert(1)">hi`, "hi"},
	{"svg onload", `<svg onload=alert(1)>hi</svg>`, "hi"},
	{"unquoted attribute tricks", `<b/onmouseover=alert(1)>x</b>`, "<b>x</b>"},
	{"style and class removed", `<p style="color:red" class="big" id="p1">x</p>`, "<p>x</p>"},
	{"form elements removed", `<form action=x><input name=a value=b><button>go</button></form>`, "go"},
	{"comments stripped", "a<!-- secret -->b<!--[if IE]><script>x</script><![endif]-->c", "abc"},
	{"doctype stripped", "<!DOCTYPE html>hi", "hi"},
	{"font not allowed", `<font color="red">x</font>`, "x"},
	{"span not allowed", `<span>x</span>`, "x"},

	{"http link gets rel", `<a href="http://x">l</a>`, `<a href="http://x"` + rel + `>l</a>`},
	{"https link", `<a href="https://example.com/a?b=1&amp;c=2#d">l</a>`, `<a href="https://example.com/a?b=1&amp;c=2#d"` + rel + `>l</a>`},
	{"mailto link", `<a href="mailto:bob@beta.example">m</a>`, `<a href="mailto:bob@beta.example"` + rel + `>m</a>`},
	{"rel and target replaced", `<a href="http://x" rel="opener" target="_top" title="t">l</a>`, `<a href="http://x"` + rel + `>l</a>`},
	{"javascript URL", `<a href="javascript:alert(1)">x</a>`, "x"},
	{"javascript URL in mixed case with spaces", `<a href=" JaVaScRiPt:alert(1)">x</a>`, "x"},
	{"javascript URL with entities", `<a href="&#106;avascript:alert(1)">x</a>`, "x"},
	{"javascript URL with a tab", "<a href=\"java\tscript:alert(1)\">x</a>", "x"},
	{"data URL", `<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>`, "x"},
	{"vbscript URL", `<a href="vbscript:msgbox(1)">x</a>`, "x"},
	{"relative URL", `<a href="/admin">x</a>`, "x"},
	{"protocol-relative URL", `<a href="//evil.example">x</a>`, "x"},
	{"http URL without host", `<a href="http:foo">x</a>`, "x"},
	{"user info refused", `<a href="http://bank.example@evil.example/">x</a>`, "x"},
	{"link without href", `<a name="x">y</a>`, "y"},
	{"nested links", `<a href="http://a">1<a href="http://b">2</a></a>`, `<a href="http://a"` + rel + `>1</a><a href="http://b"` + rel + `>2</a>`},
	{"invalid UTF-8 in a mailto URL (found by FuzzSanitize)", "<A href=mAilto:\xd6>x</A>", "x"},
	{"noncharacter in a mailto URL", "<a href=\"mailto:a&#xFFFF;@b\">x</a>", "x"},
	{"non-ASCII mailto URL kept", "<a href=\"mailto:jörg@bücher.example\">x</a>", `<a href="mailto:jörg@bücher.example"` + rel + `>x</a>`},
	{"quote in URL escaped", `<a href='http://x/"onmouseover=alert(1)'>x</a>`, `<a href="http://x/%22onmouseover=alert%281%29"` + rel + `>x</a>`},

	{"unclosed tags closed", "<b>x<i>y", "<b>x<i>y</i></b>"},
	{"stray end tags dropped", "x</b></i></p>y", "xy"},
	{"mis-nested tags", "<b><i>x</b>y</i>", "<b><i>x</i></b>y"},
	{"paragraph in paragraph", "<p>a<p>b", "<p>a</p><p>b</p>"},
	{"blockquote closes paragraph", "<p>a<blockquote>b</blockquote>", "<p>a</p><blockquote>b</blockquote>"},
	{"self-closing b opens", "<b/>x", "<b>x</b>"},

	{"entities preserved", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &amp;amp;", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &amp;amp;"},
	{"bare less-than escaped", "a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"},
	{"other references become characters", "&eacute;&nbsp;&#x1F600;&quot;&#39;", "é\u00a0😀\"'"},
	{"control references replaced", "a&#1;b&#0;c&#x1b;d", "a\ufffdb\ufffdc\ufffdd"},
	{"CR reference", "a&#13;b", "a\r\nb"},
	{"line ends become CRLF", "a\nb\r\nc\rd", "a\r\nb\r\nc\r\nd"},
	{"whitespace only", " \n\t", " \r\n\t"},
	{"empty", "", ""},
	{"invalid UTF-8 replaced", "a\xffb", "a\ufffdb"},
}

func TestSanitizeHTMLLite(t *testing.T) {
	for _, tt := range sanitizeTests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeHTMLLite(tt.in)
			if got != tt.want {
				t.Errorf("SanitizeHTMLLite(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			checkSanitized(t, tt.in, got)
		})
	}
}

// checkSanitized checks the properties every sanitized body has.
func checkSanitized(t *testing.T, in, out string) {
	t.Helper()
	if again := SanitizeHTMLLite(out); again != out {
		t.Fatalf("not idempotent for %q:\n once  %q\n twice %q", in, out, again)
	}
	if !utf8.ValidString(out) {
		t.Fatalf("output of %q is not valid UTF-8: %q", in, out)
	}
	if err := checkBody(out); err != nil {
		t.Fatalf("output of %q is not a valid body: %v", in, err)
	}
	if needsCRLF(out) {
		t.Fatalf("output of %q has a line end that is not CRLF: %q", in, out)
	}
	if strings.Contains(strings.ToLower(out), "<script") {
		t.Fatalf("output of %q contains <script: %q", in, out)
	}
	// Every tag is an html-lite tag, and only a has attributes: href with
	// an allowed scheme, then the fixed rel.
	z := html.NewTokenizer(strings.NewReader(out))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		switch tt {
		case html.CommentToken, html.DoctypeToken, html.SelfClosingTagToken:
			t.Fatalf("output of %q has a %v: %q", in, tt, out)
		case html.StartTagToken, html.EndTagToken:
			tok := z.Token()
			if liteAtom([]byte(tok.Data)) == 0 {
				t.Fatalf("output of %q has element %q: %q", in, tok.Data, out)
			}
			if tok.Data != "a" || tt == html.EndTagToken {
				if len(tok.Attr) != 0 {
					t.Fatalf("output of %q has attributes on %s: %q", in, tok.Data, out)
				}
				continue
			}
			if len(tok.Attr) != 2 || tok.Attr[0].Key != "href" || tok.Attr[1].Key != "rel" ||
				tok.Attr[1].Val != linkRel {
				t.Fatalf("output of %q has link attributes %v: %q", in, tok.Attr, out)
			}
			href := strings.ToLower(tok.Attr[0].Val)
			if !strings.HasPrefix(href, "http://") && !strings.HasPrefix(href, "https://") && !strings.HasPrefix(href, "mailto:") {
				t.Fatalf("output of %q links to %q: %q", in, href, out)
			}
		}
	}
}

// TestHTMLLiteDocExamples checks the example table of docs/html-lite.md
// against SanitizeHTMLLite, so that the page says what the code does.
func TestHTMLLiteDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/html-lite.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "\n## Examples\n")
	if !ok {
		t.Fatal("docs/html-lite.md: no Examples section")
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	n := 0
	for _, line := range strings.Split(rest, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		in := strings.Trim(strings.TrimSpace(cells[1]), "`")
		want := strings.Trim(strings.TrimSpace(cells[2]), "`")
		if got := SanitizeHTMLLite(in); got != want {
			t.Errorf("docs/html-lite.md: %q gives %q, the page says %q", in, got, want)
		}
		n++
	}
	if n < 10 {
		t.Errorf("docs/html-lite.md: read %d examples, want at least 10", n)
	}
}
