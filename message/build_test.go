package message

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

var (
	alice    = addr.MustParse("alice@alpha.example")
	bob      = addr.MustParse("bob@beta.example")
	testNow  = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	testID   = []byte{0x01, 0x93, 0x5b, 0x10, 0xc4, 0x7e, 0x70, 0x00}
	builder  = Builder{Now: func() time.Time { return testNow }}
	envelope = Envelope{From: alice, To: bob}
)

// headerOf builds the header section Build writes for a draft from alice to
// bob with testID, the test clock and the given content type and X- lines.
func headerOf(ct string, x ...string) string {
	h := "From: alice@alpha.example\r\nTo: bob@beta.example\r\n" +
		"Date: Sat, 14 Mar 2026 15:09:26 +0000\r\n" +
		"Message-ID: <01935b10c47e7000@alpha.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: " + ct + "; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n"
	for _, l := range x {
		h += l + "\r\n"
	}
	return h + "\r\n"
}

// A buildTest is a case of TestBuild; TestParseFastEquivalence parses what
// they build.
type buildTest struct {
	name    string
	draft   Draft
	maxSize int
	want    string // the whole message, if err is nil
	err     error
}

func buildTests() []buildTest {
	long := strings.Repeat("0123456789", 1024) // one 10 KB line
	return []buildTest{
		{name: "plain", draft: Draft{Body: "Hello Bob!"},
			want: headerOf(TextPlain) + "Hello Bob!"},
		{name: "content type in upper case", draft: Draft{ContentType: "TEXT/PLAIN", Body: "hi"},
			want: headerOf(TextPlain) + "hi"},
		{name: "empty body", draft: Draft{},
			want: headerOf(TextPlain)},
		{name: "CRLF normalisation", draft: Draft{Body: "a\nb\r\nc\rd\r\r\ne\n"},
			want: headerOf(TextPlain) + "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n"},
		{name: "10 KB single line kept intact", draft: Draft{Body: long},
			want: headerOf(TextPlain) + long},
		{name: "tabs and non-ASCII kept", draft: Draft{Body: "\tgrüße 👋 \u0085"},
			want: headerOf(TextPlain) + "\tgrüße 👋 \u0085"},
		{name: "X- headers pass through", draft: Draft{Body: "hi", XHeaders: []Header{
			{"x-client", "imx-web"}, {"X-Mood", "  happy\t"}, {"X-Empty", ""}, {"x-client", "second"}}},
			want: headerOf(TextPlain, "X-Client: imx-web", "X-Mood: happy", "X-Empty:", "X-Client: second") + "hi"},
		{name: "X- header with a long value is not folded", draft: Draft{Body: "hi", XHeaders: []Header{{"X-Long", long}}},
			want: headerOf(TextPlain, "X-Long: "+long) + "hi"},
		{name: "html-lite sanitized", draft: Draft{ContentType: HTMLLite, Body: "<B>Hello</B>\n<script>alert(1)</script><i onclick=x>Bob</i>"},
			want: headerOf(HTMLLite) + "<b>Hello</b>\r\n<i>Bob</i>"},

		{name: "Subject refused", draft: Draft{Body: "hi", XHeaders: []Header{{"Subject", "hello"}}}, err: ErrHeader},
		{name: "subject in lower case refused", draft: Draft{Body: "hi", XHeaders: []Header{{"subject", "hello"}}}, err: ErrHeader},
		{name: "other header refused", draft: Draft{Body: "hi", XHeaders: []Header{{"Cc", "eve@gamma.example"}}}, err: ErrHeader},
		{name: "From as extra header refused", draft: Draft{Body: "hi", XHeaders: []Header{{"From", "eve@gamma.example"}}}, err: ErrHeader},
		{name: "bare X- refused", draft: Draft{Body: "hi", XHeaders: []Header{{"X-", "v"}}}, err: ErrHeader},
		{name: "injection: CRLF in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "v\r\nBcc: eve@gamma.example"}}}, err: ErrHeader},
		{name: "injection: LF in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "v\nFrom: eve@gamma.example"}}}, err: ErrHeader},
		{name: "injection: CR in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "v\rTo: eve@gamma.example"}}}, err: ErrHeader},
		{name: "injection: blank line in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "v\r\n\r\n<script>"}}}, err: ErrHeader},
		{name: "injection: CRLF in name", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A\r\nBcc", "v"}}}, err: ErrHeader},
		{name: "injection: colon in name", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A: b\r\nTo", "v"}}}, err: ErrHeader},
		{name: "space in name", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A B", "v"}}}, err: ErrHeader},
		{name: "non-ASCII name", draft: Draft{Body: "hi", XHeaders: []Header{{"X-Grüße", "v"}}}, err: ErrHeader},
		{name: "empty name", draft: Draft{Body: "hi", XHeaders: []Header{{"", "v"}}}, err: ErrHeader},
		{name: "control character in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "\x1b[2J"}}}, err: ErrHeader},
		{name: "NUL in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "a\x00b"}}}, err: ErrHeader},
		{name: "invalid UTF-8 in value", draft: Draft{Body: "hi", XHeaders: []Header{{"X-A", "a\xffb"}}}, err: ErrHeader},

		{name: "text/html refused", draft: Draft{ContentType: "text/html", Body: "hi"}, err: ErrContentType},
		{name: "parameters refused", draft: Draft{ContentType: "text/plain; charset=latin1", Body: "hi"}, err: ErrContentType},
		{name: "invalid UTF-8", draft: Draft{Body: "caf\xe9"}, err: ErrUTF8},
		{name: "surrogate half", draft: Draft{Body: "\xed\xa0\x80"}, err: ErrUTF8},
		{name: "NUL", draft: Draft{Body: "a\x00b"}, err: ErrControl},
		{name: "escape sequence", draft: Draft{Body: "\x1b[31mred"}, err: ErrControl},
		{name: "U+FFFF", draft: Draft{Body: "\uffff"}, err: ErrControl},
		{name: "html-lite with NUL", draft: Draft{ContentType: HTMLLite, Body: "<b>\x00</b>"}, err: ErrControl},
		{name: "no From", draft: Draft{From: addr.Address{}, Body: "hi"}, err: ErrHeader},
		{name: "id too long", draft: Draft{Body: "hi", ID: make([]byte, wire.MaxMessageIDLen+1)}, err: ErrHeader},
		{name: "body over the limit before sanitizing", draft: Draft{ContentType: HTMLLite, Body: strings.Repeat("<script></script>", 10)}, maxSize: 100, err: ErrTooLarge},
		{name: "over the default limit", draft: Draft{Body: strings.Repeat("x", DefaultMaxSize-len(headerOf(TextPlain))+1)}, err: ErrTooLarge},
		{name: "at the default limit", draft: Draft{Body: strings.Repeat("x", DefaultMaxSize-len(headerOf(TextPlain)))},
			want: headerOf(TextPlain) + strings.Repeat("x", DefaultMaxSize-len(headerOf(TextPlain)))},
	}
}

// draftWithDefaults returns the draft of tt with the defaults TestBuild
// gives it.
func (tt buildTest) draftWithDefaults() Draft {
	d := tt.draft
	if d.From.IsZero() && tt.name != "no From" {
		d.From = alice
	}
	if d.To.IsZero() {
		d.To = bob
	}
	if d.ID == nil {
		d.ID = testID
	}
	return d
}

func TestBuild(t *testing.T) {
	for _, tt := range buildTests() {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.draftWithDefaults()
			got, err := builder.Build(d, tt.maxSize)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Build: err = %v, want %v", err, tt.err)
				}
				if got != nil {
					t.Errorf("Build returned %d octets with an error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("Build:\n got %q\nwant %q", got, tt.want)
			}
			// The receiver accepts it and its canonical form is the same.
			m, canon, err := Parse(got, Envelope{From: d.From, To: d.To}, d.From.Domain(), tt.maxSize)
			if err != nil {
				t.Fatalf("Parse(Build): %v", err)
			}
			if !bytes.Equal(canon, got) {
				t.Errorf("Parse(Build) canonical form differs:\n got %q\nwant %q", canon, got)
			}
			if !m.Date.Equal(testNow) || m.MessageID != "01935b10c47e7000@alpha.example" {
				t.Errorf("Parse(Build): Date %v, Message-ID %q", m.Date, m.MessageID)
			}
		})
	}
}

// TestBuildSizeLimit builds a message exactly at its limit and one octet
// over it.
func TestBuildSizeLimit(t *testing.T) {
	for _, ct := range []string{TextPlain, HTMLLite} {
		d := Draft{From: alice, To: bob, ContentType: ct, Body: "<b>x</b>\n" + strings.Repeat("y", 500), ID: testID}
		full, err := builder.Build(d, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := builder.Build(d, len(full)); err != nil {
			t.Errorf("%s: Build at exactly %d octets: %v", ct, len(full), err)
		}
		_, err = builder.Build(d, len(full)-1)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: Build one octet over: err = %v, want ErrTooLarge", ct, err)
		}
		if got := Status(err); got != wire.StatusTooLarge {
			t.Errorf("Status = %v, want too-large", got)
		}
	}
}

func TestBuildMessageID(t *testing.T) {
	d := Draft{From: alice, To: bob, Body: "hi"}

	// Random, from crypto/rand.
	re := regexp.MustCompile("\r\nMessage-ID: <[0-9a-f]{32}@alpha\\.example>\r\n")
	a, err := Build(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !re.Match(a) || !re.Match(b) {
		t.Fatalf("random Message-ID not of the form <32 hex digits@domain>:\n%s", a)
	}
	if bytes.Equal(re.Find(a), re.Find(b)) {
		t.Error("two random Message-IDs are equal")
	}

	// Random, from an injected source.
	bl := Builder{Now: builder.Now, Rand: bytes.NewReader(bytes.Repeat([]byte{0xab}, 16))}
	c, err := bl.Build(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(c, []byte("Message-ID: <abababababababababababababababab@alpha.example>\r\n")) {
		t.Errorf("injected random source not used:\n%s", c)
	}

	// A failing source is an internal error, not a bad request.
	bl.Rand = bytes.NewReader(nil)
	_, err = bl.Build(d, 0)
	if err == nil || Status(err) != wire.StatusInternal {
		t.Errorf("Build with an empty random source: err = %v, status %v", err, Status(err))
	}

	// Derived from the MESSAGE id: the same id gives the same message.
	d.ID = []byte("id-1")
	x, err := builder.Build(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	y, err := builder.Build(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) || !bytes.Contains(x, []byte("Message-ID: <69642d31@alpha.example>\r\n")) {
		t.Errorf("derived Message-ID:\n%s", x)
	}
}

func TestBuildDateUTC(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	bl := Builder{Now: func() time.Time { return time.Date(2026, 3, 14, 10, 9, 26, 999, ny) }}
	b, err := bl.Build(Draft{From: alice, To: bob, Body: "hi", ID: testID}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\r\nDate: Sat, 14 Mar 2026 15:09:26 +0000\r\n")) {
		t.Errorf("Date not in UTC:\n%s", b)
	}
	bl.Now = func() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }
	if _, err := bl.Build(Draft{From: alice, To: bob}, 0); err == nil {
		t.Error("Build with a clock in year 10000 succeeded")
	}
}

// appendDate keeps the last second it formatted; whatever the order and
// the zones, it must write what time.Format writes.
func TestAppendDateCache(t *testing.T) {
	ny := time.FixedZone("EST", -5*3600)
	base := time.Date(2026, 3, 14, 10, 9, 26, 0, time.UTC)
	times := []time.Time{
		base, base.Add(300 * time.Millisecond), base.In(ny), base.Add(time.Second),
		base, base.Add(-time.Hour).In(ny), base.Add(999 * time.Millisecond), base.Add(24 * time.Hour),
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				for _, tm := range times {
					got := string(appendDate([]byte("x"), tm))
					if want := "x" + tm.UTC().Format(dateLayout); got != want {
						t.Errorf("appendDate(%v) = %q, want %q", tm, got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}
