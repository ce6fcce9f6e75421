package message

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// The elements of text/html-lite, as docs/html-lite.md lists them. Only a
// carries an attribute (href); every other element has none.
var liteElements = []string{"a", "b", "blockquote", "br", "code", "em", "i", "p", "pre", "s", "strong", "u"}

// linkRel is the rel attribute every link of a sanitized body carries:
// search engines do not follow it, the opened page gets no handle on the
// client's window, and the client's URL is not sent as the Referer.
const linkRel = "nofollow noopener noreferrer"

// policy is the bluemonday policy of text/html-lite, built once. A
// bluemonday policy is safe for concurrent use once built.
var policy = newPolicy()

func newPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements(liteElements...)
	p.AllowAttrs("href").OnElements("a")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.AllowURLSchemeWithCustomPolicy("http", webURL)
	p.AllowURLSchemeWithCustomPolicy("https", webURL)
	p.AllowURLSchemeWithCustomPolicy("mailto", mailtoURL)
	// Besides its defaults (script, style, iframe, object, noscript, title,
	// ...), drop what a template holds: a browser never shows it.
	p.SkipElementsContent("template")
	return p
}

func webURL(u *url.URL) bool    { return u.Host != "" && u.User == nil }
func mailtoURL(u *url.URL) bool { return u.Opaque != "" }

// SanitizeHTMLLite returns s reduced to text/html-lite, the strict HTML
// subset that docs/html-lite.md describes: the elements a (with an http,
// https or mailto href), b, blockquote, br, code, em, i, p, pre, s, strong and
// u. Disallowed elements are removed and their text kept, except for
// elements whose content a browser would not show as text (script, style,
// iframe, object, template, ...), which are removed with their content.
// Every attribute other than a's href is removed, and every link gets
// rel="nofollow noopener noreferrer". Comments and doctypes are removed.
//
// The result is well nested: an end tag with no open element is dropped,
// an end tag closes the elements opened after its own, and elements still
// open at the end are closed. Tag names are lower-case, text escapes only
// &, < and > (other character references are replaced by their
// characters), characters that are not allowed in a message body (NUL and
// other C0 controls but tab and newline, U+FFFE, U+FFFF and invalid UTF-8)
// become U+FFFD, and every line ends in CRLF, as in a message body.
//
// SanitizeHTMLLite is idempotent: sanitizing its result changes nothing.
// Both servers run it on every text/html-lite body (Build before sending,
// Parse on receipt); a client should still render the result as HTML only
// inside a container it controls.
func SanitizeHTMLLite(s string) string {
	return normalizeLite(policy.Sanitize(s))
}

// normalizeLite turns the output of the bluemonday policy into the
// canonical form described at SanitizeHTMLLite: it checks again that only
// html-lite elements and attributes remain, balances the tags and
// re-serializes text and attributes.
func normalizeLite(s string) string {
	var out strings.Builder
	out.Grow(len(s) + len(s)/8)
	var open []atom.Atom
	// depth counts the open elements of each kind, so that an end tag
	// for an element that is not open costs nothing and no input makes
	// the pass quadratic.
	depth := map[atom.Atom]int{}
	// closeTo closes the open elements down to and including the innermost
	// element e, if e is open.
	closeTo := func(e atom.Atom) {
		if depth[e] == 0 {
			return
		}
		for {
			last := open[len(open)-1]
			open = open[:len(open)-1]
			depth[last]--
			writeEndTag(&out, last)
			if last == e {
				return
			}
		}
	}
	z := html.NewTokenizer(strings.NewReader(s))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			// io.EOF: the tokenizer reports no other error without a
			// buffer limit, and on any error the output so far is safe.
			for i := len(open) - 1; i >= 0; i-- {
				writeEndTag(&out, open[i])
			}
			return out.String()
		case html.TextToken:
			writeText(&out, z.Text())
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			e := liteAtom(name)
			switch e {
			case 0:
				continue
			case atom.Br:
				out.WriteString("<br>")
				continue
			case atom.A:
				var href string
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						href = string(v)
					}
				}
				u, ok := cleanURL(href)
				if !ok {
					continue // a link without a usable target is its text alone
				}
				closeTo(atom.A) // links do not nest
				out.WriteString(`<a href="`)
				out.WriteString(html.EscapeString(u))
				out.WriteString(`" rel="` + linkRel + `">`)
				open = append(open, e)
				depth[e]++
				continue
			case atom.P, atom.Pre, atom.Blockquote:
				// As in a browser, a block starts after an open paragraph.
				closeTo(atom.P)
			}
			out.WriteByte('<')
			out.WriteString(e.String())
			out.WriteByte('>')
			open = append(open, e)
			depth[e]++
		case html.EndTagToken:
			name, _ := z.TagName()
			if e := liteAtom(name); e != 0 {
				closeTo(e)
			}
		}
		// Comments and doctypes are dropped.
	}
}

func writeEndTag(out *strings.Builder, e atom.Atom) {
	out.WriteString("</")
	out.WriteString(e.String())
	out.WriteByte('>')
}

// liteAtom returns the atom of an html-lite element name, or 0.
func liteAtom(name []byte) atom.Atom {
	switch e := atom.Lookup(name); e {
	case atom.A, atom.B, atom.Blockquote, atom.Br, atom.Code, atom.Em, atom.I,
		atom.P, atom.Pre, atom.S, atom.Strong, atom.U:
		return e
	}
	return 0
}

// cleanURL checks a link target as the policy does and returns its
// normalised form, which parses to itself.
func cleanURL(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", false
	}
	switch u.Scheme {
	case "http", "https":
		if !webURL(u) {
			return "", false
		}
	case "mailto":
		if !mailtoURL(u) {
			return "", false
		}
	default:
		return "", false
	}
	s := u.String()
	// url.Parse refuses ASCII controls, but String writes a mailto
	// address (and a host) as it came, invalid UTF-8 included.
	if strings.ContainsAny(s, " \t\n\r") || checkBody(s) != nil {
		return "", false
	}
	// A URL whose normalised form normalises differently would make
	// sanitizing depend on how often it ran.
	if v, err := url.Parse(s); err != nil || v.String() != s {
		return "", false
	}
	return s, true
}

// writeText writes text escaped for HTML: &, < and > become references,
// line ends become CRLF and characters not allowed in a body become U+FFFD.
// Runs of other characters are copied as they are.
func writeText(out *strings.Builder, t []byte) {
	run := 0 // t[run:i] is copied as is
	for i := 0; i < len(t); {
		c := t[i]
		var repl string
		n := 1
		switch {
		case c == '&':
			repl = "&amp;"
		case c == '<':
			repl = "&lt;"
		case c == '>':
			repl = "&gt;"
		case c == '\r':
			if i+1 < len(t) && t[i+1] == '\n' {
				n = 2
			}
			repl = "\r\n"
		case c == '\n':
			repl = "\r\n"
		case c < utf8.RuneSelf:
			if !bodyRune(rune(c)) {
				repl = "\uFFFD"
			}
		default:
			var r rune
			r, n = utf8.DecodeRune(t[i:])
			if r == utf8.RuneError && n == 1 || !bodyRune(r) {
				repl = "\uFFFD"
			}
		}
		if repl != "" {
			out.Write(t[run:i])
			out.WriteString(repl)
			run = i + n
		}
		i += n
	}
	out.Write(t[run:])
}
