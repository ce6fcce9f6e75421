package message

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
)

// checkFastPath runs b through parseFast and parseGeneral and fails t unless
// they agree: if parseFast accepts b, parseGeneral must accept it too, with
// the same Message and the same canonical bytes. It also checks that Parse
// gives what parseGeneral gives, error text included, that the bytes
// Parse returns share no memory with b, and that Canonical returns the
// bytes and error of Parse. It reports whether parseFast accepted b.
func checkFastPath(t testing.TB, b []byte, env Envelope, domain string, maxSize int) bool {
	t.Helper()
	limit := maxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	in := bytes.Clone(b)
	fm, fcanon, ok := parseFast(b, env, domain, limit, false)
	gm, gcanon, gerr := parseGeneral(b, env, domain, limit)
	if !bytes.Equal(b, in) {
		t.Fatalf("parsing changed its input %q", in)
	}
	if ok {
		if gerr != nil {
			t.Fatalf("parseFast accepts what parseGeneral refuses (%v):\ninput %q\nenv %v %v domain %q maxSize %d", gerr, b, env.From, env.To, domain, maxSize)
		}
		if !reflect.DeepEqual(fm, gm) {
			t.Fatalf("parseFast and parseGeneral give other messages:\nfast    %#v\ngeneral %#v\ninput %q", fm, gm, b)
		}
		if !bytes.Equal(fcanon, gcanon) {
			t.Fatalf("parseFast and parseGeneral give other bytes:\nfast    %q\ngeneral %q\ninput %q", fcanon, gcanon, b)
		}
	} else if fcanon != nil || !reflect.DeepEqual(fm, Message{}) {
		t.Fatalf("parseFast gives up with a result: %+v %q", fm, fcanon)
	}
	pm, pcanon, perr := Parse(b, env, domain, maxSize)
	if (perr == nil) != (gerr == nil) || perr != nil && perr.Error() != gerr.Error() {
		t.Fatalf("Parse err = %v, parseGeneral err = %v\ninput %q", perr, gerr, b)
	}
	if !reflect.DeepEqual(pm, gm) || !bytes.Equal(pcanon, gcanon) || (pcanon == nil) != (gcanon == nil) {
		t.Fatalf("Parse and parseGeneral differ:\nParse   %#v %q\ngeneral %#v %q", pm, pcanon, gm, gcanon)
	}
	if len(pcanon) > 0 && len(b) > 0 {
		// The canonical bytes are the caller's to keep and change.
		pcanon[0] ^= 0xff
		same := b[0] == in[0]^0xff
		pcanon[0] ^= 0xff
		if same || !bytes.Equal(b, in) {
			t.Fatalf("the canonical bytes share memory with the input")
		}
	}
	ccanon, cerr := Canonical(b, env, domain, maxSize)
	if (cerr == nil) != (perr == nil) || cerr != nil && cerr.Error() != perr.Error() || !bytes.Equal(ccanon, pcanon) || (ccanon == nil) != (pcanon == nil) {
		t.Fatalf("Canonical gives %q, %v; Parse %q, %v\ninput %q", ccanon, cerr, pcanon, perr, b)
	}
	if !bytes.Equal(b, in) {
		t.Fatalf("Canonical changed its input %q", in)
	}
	if len(ccanon) > 0 && len(b) > 0 {
		ccanon[0] ^= 0xff
		same := b[0] == in[0]^0xff
		ccanon[0] ^= 0xff
		if same {
			t.Fatalf("Canonical's bytes share memory with the input")
		}
	}
	return ok
}

// fastPathCase is an input with the arguments to parse it with.
type fastPathCase struct {
	name    string
	in      []byte
	env     Envelope
	domain  string
	maxSize int
}

// canonicalInputs are messages in the canonical form, each with its
// envelope: the golden files and what the cases of TestBuild, the
// benchmarks and a few more drafts build.
func canonicalInputs(t *testing.T) []fastPathCase {
	var cs []fastPathCase
	add := func(name string, b []byte, d Draft) {
		cs = append(cs, fastPathCase{name: name, in: b, env: Envelope{From: d.From, To: d.To}, domain: d.From.Domain()})
	}
	for _, g := range goldenDrafts {
		b, err := os.ReadFile(filepath.Join("testdata", "golden", g.name+".msg"))
		if err != nil {
			t.Fatal(err)
		}
		add("golden "+g.name, b, g.draft)
	}
	for _, tt := range buildTests() {
		if tt.err != nil {
			continue
		}
		d := tt.draftWithDefaults()
		b, err := builder.Build(d, tt.maxSize)
		if err != nil {
			t.Fatalf("Build %s: %v", tt.name, err)
		}
		add("build "+tt.name, b, d)
	}
	for _, bb := range benchBodies {
		d := Draft{From: alice, To: bob, ContentType: bb.ct, Body: bb.body, ID: testID,
			XHeaders: []Header{{"X-Client", "imx-web"}}}
		b, err := builder.Build(d, 0)
		if err != nil {
			t.Fatal(err)
		}
		add("bench "+bb.name, b, d)
	}
	// Dates that test the calendar: leap days, ends of months and years,
	// the first and last years.
	dates := []time.Time{
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1900, 2, 28, 23, 59, 59, 0, time.UTC),
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 1, 2, 3, 0, time.UTC),
		time.Date(2026, 4, 30, 9, 8, 7, 0, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	for _, when := range dates {
		bl := Builder{Now: func() time.Time { return when }}
		d := Draft{From: alice, To: bob, Body: "hi", ID: testID}
		b, err := bl.Build(d, 0)
		if err != nil {
			t.Fatal(err)
		}
		add("date "+when.String(), b, d)
	}
	more := []Draft{
		{From: alice, To: bob},
		{From: alice, To: bob, Body: "\r\n"},
		{From: alice, To: bob, Body: "a\r\n\r\nb\r\n"},
		{From: alice, To: bob, Body: "\t\u007f\u0085\u00a0\ufffd\U0010fffd é 👋 01234567890123456789\r\n"},
		{From: alice, To: bob, ContentType: HTMLLite},
		{From: alice, To: bob, ContentType: HTMLLite, Body: "&amp;&lt;&gt; <br> <a href=\"mailto:x@y.example\">m</a>"},
		{From: alice, To: alice, Body: "to myself", XHeaders: []Header{{"X-A", "1"}, {"X-B", ""}, {"X-C", "x\ty"}, {"X-D", "é"}, {"X-E-F-G", "4"}, {"x-f", "5"}}},
		{From: addr.MustParse("ÅSA@ÖRE.example"), To: addr.MustParse("bob@xn--bcher-kva.example"), Body: "idn"},
	}
	for i, d := range more {
		d.ID = []byte{byte(i), 0xab} // not random: the same inputs on every run
		b, err := builder.Build(d, 0)
		if err != nil {
			t.Fatal(err)
		}
		add("more "+strconv.Itoa(i), b, d)
	}
	return cs
}

// TestParseFastEquivalence runs the inputs of the tests through parseFast
// and parseGeneral, with several envelopes and limits, and requires the same
// results: every canonical message (which parseFast must accept), every
// input of TestParse, the FuzzParse corpus, and canonical messages with
// their lines, octets and dates changed in many ways.
func TestParseFastEquivalence(t *testing.T) {
	canon := canonicalInputs(t)
	for _, c := range canon {
		if !checkFastPath(t, c.in, c.env, c.domain, 0) {
			t.Errorf("%s: parseFast does not take a canonical message:\n%q", c.name, c.in)
		}
		if !checkFastPath(t, c.in, c.env, c.domain, len(c.in)) {
			t.Errorf("%s: parseFast does not take a canonical message at its limit", c.name)
		}
	}

	var cs []fastPathCase
	for _, tt := range parseTests() {
		env, domain := envelope, "alpha.example"
		if tt.env != nil {
			env = *tt.env
		}
		if tt.domain != "" {
			domain = tt.domain
		}
		cs = append(cs, fastPathCase{name: tt.name, in: []byte(tt.in), env: env, domain: domain, maxSize: tt.maxSize})
	}
	corpus, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	if err != nil || len(corpus) == 0 {
		t.Fatalf("corpus: %v, %d files", err, len(corpus))
	}
	for _, path := range corpus {
		cs = append(cs, fastPathCase{name: path, in: readCorpusBytes(t, path), env: envelope, domain: "alpha.example"})
	}
	cs = append(cs, canon...)

	// Other envelopes and limits for every input.
	envs := []Envelope{envelope, {From: alice, To: alice}, {From: bob, To: alice}, {}, {From: alice},
		{From: addr.MustParse("alice@alpha.example.net"), To: bob}, {From: addr.MustParse("alic@alpha.example"), To: bob}}
	fast, total, inputs := 0, 0, len(cs)
	for _, c := range cs {
		for _, maxSize := range []int{c.maxSize, len(c.in), len(c.in) - 1, 100} {
			total++
			if checkFastPath(t, c.in, c.env, c.domain, maxSize) {
				fast++
			}
		}
		for _, env := range envs {
			total++
			if checkFastPath(t, c.in, env, env.From.Domain(), 0) {
				fast++
			}
		}
		if env, ok := envelopeOf(c.in); ok {
			total++
			if checkFastPath(t, c.in, env, env.From.Domain(), 0) {
				fast++
			}
		}
	}
	// Canonical messages changed in one place, with their own envelope:
	// all changes of lines and dates for every message, changes of octets
	// for the golden files and the drafts of canonicalInputs that have X-
	// headers, IDN addresses and html-lite.
	for _, c := range canon {
		octets := strings.HasPrefix(c.name, "golden ") || strings.HasPrefix(c.name, "more ")
		for _, m := range mutations(c.in, octets) {
			inputs++
			total++
			if checkFastPath(t, m, c.env, c.domain, 0) {
				fast++
			}
		}
	}
	t.Logf("%d inputs, %d runs, %d taken by parseFast", inputs, total, fast)
}

// readCorpusBytes reads a file of the fuzzing corpus that holds one []byte.
func readCorpusBytes(t *testing.T, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, lit, ok := strings.Cut(strings.TrimSpace(string(data)), "\n[]byte(")
	if !ok || !strings.HasSuffix(lit, ")") {
		t.Fatalf("%s: not a []byte corpus entry", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// envelopeOf returns the envelope that the first From and To lines of b
// name, if they parse, so that a fuzzed message can match its envelope.
func envelopeOf(b []byte) (Envelope, bool) {
	var env Envelope
	for _, line := range strings.Split(string(b), "\r\n") {
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		a, err := addr.Parse(trimWSP(v))
		if err != nil {
			continue
		}
		switch strings.ToLower(name) {
		case "from":
			if env.From.IsZero() {
				env.From = a
			}
		case "to":
			if env.To.IsZero() {
				env.To = a
			}
		}
	}
	return env, !env.From.IsZero() && !env.To.IsZero()
}

// mutations returns variants of a canonical message b that are each one
// change away from it: every line deleted, doubled, moved up, folded,
// changed in case and given white space, X- headers and other headers
// inserted, other dates, and if octets is true every octet of the header
// section (and a sample of the body) replaced by one of a set, deleted or
// doubled, and every cut.
func mutations(b []byte, octets bool) [][]byte {
	var out [][]byte
	add := func(parts ...[]byte) {
		out = append(out, bytes.Join(parts, nil))
	}
	repl := []byte{0, '\t', '\n', '\r', ' ', '-', '.', '0', ':', '<', '@', 'A', 'a', 0x7f, 0xc3, 0xff}
	hdrEnd := bytes.Index(b, []byte("\r\n\r\n"))
	if hdrEnd < 0 {
		hdrEnd = len(b)
	}
	// Octet changes: all of them in the header section, about 40 in the
	// body.
	step := max((len(b)-hdrEnd)/24, 1)
	for i := 0; octets && i < len(b); i++ {
		if i > hdrEnd+8 && i < len(b)-8 && (i-hdrEnd)%step != 0 {
			continue
		}
		for _, c := range repl {
			if c != b[i] {
				add(b[:i], []byte{c}, b[i+1:])
			}
		}
		add(b[:i], b[i+1:])
		add(b[:i+1], b[i:])
		add(b[:i])
	}
	// Line changes in the header section.
	lines := bytes.SplitAfter(b[:hdrEnd+2], []byte("\r\n"))
	rest := b[hdrEnd+2:]
	join := func(ls [][]byte) []byte {
		return append(bytes.Join(ls, nil), rest...)
	}
	for i, l := range lines {
		without := append(append([][]byte{}, lines[:i]...), lines[i+1:]...)
		add(join(without))
		add(join(append(append(append([][]byte{}, lines[:i+1]...), l), lines[i+1:]...)))
		if i > 0 {
			swapped := append([][]byte{}, lines...)
			swapped[i-1], swapped[i] = swapped[i], swapped[i-1]
			add(join(swapped))
		}
		name, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		for _, nl := range [][]byte{
			append(bytes.ToLower(name), append([]byte(":"), v...)...),
			append(bytes.ToUpper(name), append([]byte(":"), v...)...),
			append(append([]byte{}, name...), append([]byte(":"), bytes.TrimPrefix(v, []byte(" "))...)...),
			append(append([]byte{}, name...), append([]byte(":  "), v...)...),
			append(append([]byte{}, name...), append([]byte(":\t"), v...)...),
			append(append([]byte{}, name...), append([]byte(":\r\n "), v...)...),
			append(append([]byte{}, name...), append([]byte(" :"), v...)...),
			append(append([]byte{}, name...), append([]byte(":"), bytes.Replace(v, []byte("\r\n"), []byte(" \r\n"), 1)...)...),
			append(append([]byte{}, name...), append([]byte(":"), bytes.Replace(v, []byte("\r\n"), []byte("\t\r\n"), 1)...)...),
			append(append([]byte{}, name...), append([]byte(":"), bytes.Replace(v, []byte("\r\n"), []byte("\n"), 1)...)...),
		} {
			ls := append([][]byte{}, lines...)
			ls[i] = nl
			add(join(ls))
		}
		for _, ins := range []string{"X-Y: z\r\n", "x-y: z\r\n", "X-Y:\r\n", "X-Y: \r\n", "X-Y:z\r\n", "X-Y: z \r\n", "X-y-Z: 1\r\n",
			"X-Y: 1\r\n 2\r\n", "Subject: hi\r\n", "Received: x\r\n", "X-: 1\r\n", "X-Y(: 1\r\n", "X-Y: \xff\r\n", "X-Y: \x01\r\n",
			"Content-Type: text/plain\r\n", "Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n", "Message-ID: <a@b>\r\n", "From: alice@alpha.example\r\n"} {
			ls := append(append(append([][]byte{}, lines[:i]...), []byte(ins)), lines[i:]...)
			add(join(ls))
		}
	}
	// Other dates, and dates that look canonical but are not.
	if i := bytes.Index(b, []byte("\r\nDate: ")); i >= 0 && i+8+len(dateLayout) <= len(b) {
		start, end := i+8, i+8+len(dateLayout)
		for _, d := range testDates {
			add(b[:start], []byte(d), b[end:])
		}
	}
	return out
}

// testDates are Date values for the date checks: canonical ones and ones
// that are near it, valid and not.
var testDates = []string{
	"Sat, 14 Mar 2026 15:09:26 +0000",
	"Fri, 14 Mar 2026 15:09:26 +0000", // wrong day of the week
	"sat, 14 Mar 2026 15:09:26 +0000",
	"SAT, 14 MAR 2026 15:09:26 +0000",
	"Sat, 14 mar 2026 15:09:26 +0000",
	"Sat, 14 Mar 2026 15:09:26 -0000",
	"Sat, 14 Mar 2026 15:09:26 +0100",
	"Sat, 14 Mar 2026 15:09:26 GMT",
	"Sat, 14 Mar 2026 15:09:26 UT",
	"Sat,  4 Mar 2026 15:09:26 +0000",
	"Wed, 04 Mar 2026 15:09:26 +0000",
	"Wed,  4 Mar 2026 15:09:26 +0000",
	"Sat, 14 Mar 2026 15:09:60 +0000",
	"Sat, 14 Mar 2026 15:60:26 +0000",
	"Sun, 15 Mar 2026 24:00:00 +0000",
	"Sat, 14 Mar 2026 5:09:26 +0000",
	"Sat, 14 Mar 2026 15:09 +0000",
	"Sat, 14 Mar 2026 15:09:26.5 +0000",
	"Sat, 14 Mar 2026 15:09:26.0 +0000",
	"Sun, 00 Mar 2026 15:09:26 +0000",
	"Tue, 29 Feb 2000 00:00:00 +0000",
	"Thu, 29 Feb 2024 00:00:00 +0000",
	"Sun, 29 Feb 2026 00:00:00 +0000",
	"Mon, 01 Mar 2100 00:00:00 +0000",
	"Mon, 29 Feb 2100 00:00:00 +0000",
	"Sat, 31 Apr 2026 00:00:00 +0000",
	"Fri, 01 May 2026 00:00:00 +0000",
	"Thu, 31 Dec 2026 23:59:59 +0000",
	"Fri, 32 Dec 2026 23:59:59 +0000",
	"Mon, 01 Jan 1900 00:00:00 +0000",
	"Sun, 31 Dec 1899 23:59:59 +0000",
	"Fri, 31 Dec 9999 23:59:59 +0000",
	"Sat, 14 Mar 0999 15:09:26 +0000",
	"Sat, 14 Mar 2026 15:09:26 +000a",
	"Sat, 14 Mar 2026 15:09:26 +0000 ",
	"Sat, 14 Mar 2026 15:09:26  +0000",
	"Sat, 14 Mar 2026 15:09:2a +0000",
	"Sat, 14 Mar 2026 15:09:-6 +0000",
	"Sat, 14 Mar +026 15:09:26 +0000",
	"Sat, 1a Mar 2026 15:09:26 +0000",
	"Sat; 14 Mar 2026 15:09:26 +0000",
	"Xyz, 14 Mar 2026 15:09:26 +0000",
	"Sat, 14 Foo 2026 15:09:26 +0000",
	"Sat, 14 Mar 2026 15.09.26 +0000",
	"Sat, 14\u00a0Mar 2026 15:09:26 +0000",
}

// TestFastHelpers checks the helpers of parseFast against the code of
// parseGeneral they stand for.
func TestFastHelpers(t *testing.T) {
	inputs := append([]string{}, testDates...)
	inputs = append(inputs, "", " ", "\t", "a", " a", "a ", "a\t", "\ta", "a b", "\x00", "\x1f", "\x7f", "\x80", "\xc3", "\xc3\xa9",
		"\r", "\n", "\r\n", "\n\r", "a\r\nb", "a\rb", "a\nb", "\r\r\n", "\uFFFD", "\uFFFE", "\uFFFF", "\U0010FFFF", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\u0085", "\u2028", strings.Repeat("abcdefgh", 9), strings.Repeat("é", 9))
	for i := 0; i < 20; i++ {
		for _, c := range []string{"\x00", "\x1f", "\x7f", "\x80", "\xff", "\r", "\n", "\r\n", "\t", "\x20", "~", "é", "\uFFFF"} {
			inputs = append(inputs, strings.Repeat("x", i)+c+strings.Repeat("y", 19-i))
		}
	}
	for _, s := range inputs {
		checkFastHelpers(t, s)
	}
}

// checkFastHelpers checks cleanBody, validValue, trimmed and
// parseCanonicalDate on s.
func checkFastHelpers(t testing.TB, s string) {
	t.Helper()
	if got, want := cleanBody(s), checkBody(s) == nil && toCRLF(s) == s; got != want {
		t.Fatalf("cleanBody(%q) = %v, want %v", s, got, want)
	}
	if got, want := validValue(s), checkValue("X", s) == nil; got != want {
		t.Fatalf("validValue(%q) = %v, want %v", s, got, want)
	}
	if got, want := trimmed(s), trimWSP(s) == s; got != want {
		t.Fatalf("trimmed(%q) = %v, want %v", s, got, want)
	}
	if got, ok := parseCanonicalDate(s); ok {
		want, err := parseDate(s)
		if err != nil {
			t.Fatalf("parseCanonicalDate(%q) accepts what parseDate refuses: %v", s, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parseCanonicalDate(%q) = %#v, parseDate gives %#v", s, got, want)
		}
		if f := got.Format(dateLayout); f != s {
			t.Fatalf("parseCanonicalDate(%q) accepts a date that appendMIME writes as %q", s, f)
		}
	} else if want, err := parseDate(s); err == nil && want.Format(dateLayout) == s {
		t.Fatalf("parseCanonicalDate(%q) refuses a canonical date", s)
	}
}

// FuzzFastHelpers checks the helpers of parseFast against the code of
// parseGeneral they stand for, on any string.
func FuzzFastHelpers(f *testing.F) {
	for _, s := range testDates {
		f.Add(s)
	}
	f.Add("Hello Bob!\r\nline two\tgrüße 👋")
	f.Add("a\nb\rc\x00\uFFFF")
	f.Fuzz(func(t *testing.T, s string) {
		checkFastHelpers(t, s)
	})
}

func TestParseFastDates(t *testing.T) {
	// Every day of a leap year and of a common year, at the edges of the
	// day, and the first days of the years of the Gregorian cycle.
	var days []time.Time
	for _, y := range []int{2024, 2026} {
		for d := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == y; d = d.AddDate(0, 0, 1) {
			days = append(days, d, d.Add(24*time.Hour-time.Second))
		}
	}
	for y := 1900; y <= 9999; y += 37 {
		days = append(days, time.Date(y, 2, 28, 12, 30, 45, 0, time.UTC), time.Date(y, 3, 1, 0, 0, 0, 0, time.UTC))
	}
	for _, d := range days {
		s := d.Format(dateLayout)
		got, ok := parseCanonicalDate(s)
		if !ok || !reflect.DeepEqual(got, d) {
			t.Fatalf("parseCanonicalDate(%q) = %v, %v; want %v", s, got, ok, d)
		}
		checkFastHelpers(t, s)
		// A wrong day of the week is refused.
		for _, wd := range []string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"} {
			checkFastHelpers(t, wd+s[3:])
		}
	}
}
