package message

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/wire"
)

// minimal is the smallest message §5 allows: From and To, then the body.
const minimal = "From: alice@alpha.example\r\nTo: bob@beta.example\r\n\r\n"

// canonHeader is the header section Parse writes for a message from alice to
// bob without Date and Message-ID.
func canonHeader(ct string, x ...string) string {
	h := "From: alice@alpha.example\r\nTo: bob@beta.example\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: " + ct + "; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n"
	for _, l := range x {
		h += l + "\r\n"
	}
	return h + "\r\n"
}

// A parseTest is a case of TestParse; TestParseFastEquivalence runs the
// inputs too.
type parseTest struct {
	name    string
	in      string
	env     *Envelope // nil: alice to bob
	domain  string    // "": alpha.example
	maxSize int
	want    string // the canonical form, if err is nil
	check   func(t *testing.T, m Message)
	err     error
}

func parseTests() []parseTest {
	long := strings.Repeat("abcdefghij", 1024)
	return []parseTest{
		// The two MIME parts of the MESSAGE examples of docs/protocol.md §5.7.
		{name: "protocol.md message",
			in:   "From: alice@alpha.example\r\nTo: bob@beta.example\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Bob! This paragraph is sent as one long line, as section 5 of the draft asks" + strings.Repeat(".", 40),
			want: canonHeader(TextPlain) + "Hello Bob! This paragraph is sent as one long line, as section 5 of the draft asks" + strings.Repeat(".", 40)},
		{name: "protocol.md message-attrs", in: minimal + "hi", want: canonHeader(TextPlain) + "hi"},

		{name: "full message", in: headerOf(TextPlain, "X-Client: imx-web") + "Hello",
			want: headerOf(TextPlain, "X-Client: imx-web") + "Hello",
			check: func(t *testing.T, m Message) {
				want := Message{From: alice, To: bob, Date: testNow, MessageID: "01935b10c47e7000@alpha.example",
					ContentType: TextPlain, Body: "Hello", XHeaders: []Header{{"X-Client", "imx-web"}}}
				if !reflect.DeepEqual(m, want) {
					t.Errorf("got %+v\nwant %+v", m, want)
				}
			}},
		{name: "10 KB line kept", in: minimal + long, want: canonHeader(TextPlain) + long},
		{name: "body line ends normalised", in: minimal + "a\nb\rc\r\n", want: canonHeader(TextPlain) + "a\r\nb\r\nc\r\n"},
		{name: "no blank line, no body", in: "From: alice@alpha.example\r\nTo: bob@beta.example\r\n", want: canonHeader(TextPlain)},
		{name: "field names in any case, values trimmed", in: "FROM:alice@alpha.example \r\nto:\t Bob@Beta.Example\r\n\r\nhi", want: canonHeader(TextPlain) + "hi"},
		{name: "Subject and other headers dropped, X- kept in order",
			in:   "Received: from x\r\nFrom: alice@alpha.example\r\nSubject: hello\r\nX-B: 2\r\nTo: bob@beta.example\r\nx-a: 1\r\nReply-To: eve@gamma.example\r\nX-B: 3\r\n\r\nhi",
			want: canonHeader(TextPlain, "X-B: 2", "X-A: 1", "X-B: 3") + "hi"},
		{name: "folded X- header unfolded",
			in:   "From: alice@alpha.example\r\nTo: bob@beta.example\r\nX-Note: one\r\n two\r\n\tthree\r\n\r\nhi",
			want: canonHeader(TextPlain, "X-Note: one two\tthree") + "hi"},
		{name: "folded To", in: "From: alice@alpha.example\r\nTo:\r\n bob@beta.example\r\n\r\nhi", want: canonHeader(TextPlain) + "hi"},
		{name: "charset in upper case, quoted", in: "From: alice@alpha.example\r\nTo: bob@beta.example\r\nContent-Type: Text/Plain; Charset=\"UTF-8\"; format=flowed\r\n\r\nhi", want: canonHeader(TextPlain) + "hi"},
		{name: "no charset", in: "From: alice@alpha.example\r\nTo: bob@beta.example\r\nContent-Type: text/html-lite\r\n\r\n<b>hi</b>", want: canonHeader(HTMLLite) + "<b>hi</b>"},
		{name: "7bit", in: "From: alice@alpha.example\r\nTo: bob@beta.example\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhi", want: canonHeader(TextPlain) + "hi"},
		{name: "8BIT", in: "From: alice@alpha.example\r\nTo: bob@beta.example\r\nContent-Transfer-Encoding: 8BIT\r\nMIME-Version: 1.0\r\n\r\nhi", want: canonHeader(TextPlain) + "hi"},
		{name: "html-lite sanitized again",
			in:   "From: alice@alpha.example\r\nTo: bob@beta.example\r\nContent-Type: text/html-lite; charset=utf-8\r\n\r\n<B onclick=\"steal()\">hi</B><script>alert(1)</script>\n<a href=\"javascript:alert(1)\">x</a><a href=http://example.com/>y</a>",
			want: canonHeader(HTMLLite) + "<b>hi</b>\r\nx<a href=\"http://example.com/\" rel=\"nofollow noopener noreferrer\">y</a>"},
		{name: "Date with offset converted to UTC", in: "Date: Sat, 14 Mar 2026 16:09:26 +0100\r\n" + minimal + "hi",
			check: func(t *testing.T, m Message) {
				if !m.Date.Equal(testNow) || m.Date.Location() != time.UTC {
					t.Errorf("Date = %v", m.Date)
				}
			}},
		{name: "Date without day name and seconds, GMT", in: "Date: 14  Mar 2026 15:09 GMT\r\n" + minimal,
			check: func(t *testing.T, m Message) {
				if !m.Date.Equal(testNow.Truncate(time.Minute)) {
					t.Errorf("Date = %v", m.Date)
				}
			}},
		{name: "Date in PDT", in: "Date: Sat, 14 Mar 2026 08:09:26 PDT\r\n" + minimal,
			check: func(t *testing.T, m Message) {
				if !m.Date.Equal(testNow) {
					t.Errorf("Date = %v", m.Date)
				}
			}},
		{name: "size exactly at the limit", in: minimal + "0123456789", maxSize: len(minimal) + 10, want: canonHeader(TextPlain) + "0123456789"},

		{name: "size one over the limit", in: minimal + "0123456789", maxSize: len(minimal) + 9, err: ErrTooLarge},
		{name: "over the default limit", in: minimal + strings.Repeat("x", DefaultMaxSize), err: ErrTooLarge},
		{name: "minimal message at the limit grows into the slack", in: minimal + strings.Repeat("x", 1000), maxSize: len(minimal) + 1000,
			want: canonHeader(TextPlain) + strings.Repeat("x", 1000)},
		{name: "over the limit once canonical", in: "Content-Type: text/html-lite\r\n" + minimal + strings.Repeat("&", 1000), maxSize: 2000, err: ErrTooLarge},
		{name: "at the limit once canonical", in: "Content-Type: text/html-lite\r\n" + minimal + strings.Repeat("&", 1000),
			maxSize: len(canonHeader(HTMLLite)) + 5000 - CanonicalSlack, want: canonHeader(HTMLLite) + strings.Repeat("&amp;", 1000)},
		{name: "one over the limit once canonical", in: "Content-Type: text/html-lite\r\n" + minimal + strings.Repeat("&", 1000),
			maxSize: len(canonHeader(HTMLLite)) + 5000 - CanonicalSlack - 1, err: ErrTooLarge},
		{name: "From mismatch", in: "From: mallory@alpha.example\r\nTo: bob@beta.example\r\n\r\nhi", err: ErrFromMismatch},
		{name: "From of another domain", in: "From: ceo@gamma.example\r\nTo: bob@beta.example\r\n\r\nhi", err: ErrFromMismatch},
		{name: "To mismatch", in: "From: alice@alpha.example\r\nTo: carol@beta.example\r\n\r\nhi", err: ErrToMismatch},
		{name: "wrong sender domain", in: "From: eve@gamma.example\r\nTo: bob@beta.example\r\n\r\nhi",
			env: &Envelope{From: addr.MustParse("eve@gamma.example"), To: bob}, err: ErrSenderDomain},
		{name: "sender domain of the recipient", in: minimal, domain: "beta.example", err: ErrSenderDomain},
		{name: "empty envelope", in: minimal, env: &Envelope{}, err: ErrFromMismatch},
		{name: "display name", in: "From: Alice <alice@alpha.example>\r\nTo: bob@beta.example\r\n\r\nhi", err: ErrHeader},
		{name: "two addresses", in: "From: alice@alpha.example\r\nTo: bob@beta.example, carol@beta.example\r\n\r\nhi", err: ErrHeader},
		{name: "no From", in: "To: bob@beta.example\r\n\r\nhi", err: ErrHeader},
		{name: "no To", in: "From: alice@alpha.example\r\n\r\nhi", err: ErrHeader},
		{name: "two From", in: "From: alice@alpha.example\r\n" + minimal, err: ErrHeader},
		{name: "two To, the second in lower case", in: minimal[:len(minimal)-2] + "to: bob@beta.example\r\n\r\n", err: ErrHeader},
		{name: "two Content-Type", in: "Content-Type: text/plain\r\nContent-Type: text/html-lite\r\n" + minimal, err: ErrHeader},
		{name: "two Date", in: "Date: 14 Mar 2026 15:09 GMT\r\nDate: 14 Mar 2026 15:09 GMT\r\n" + minimal, err: ErrHeader},
		{name: "base64 refused", in: "Content-Transfer-Encoding: base64\r\n" + minimal + "aGk=", err: ErrEncoding},
		{name: "quoted-printable refused", in: "Content-Transfer-Encoding: quoted-printable\r\n" + minimal + "h=69", err: ErrEncoding},
		{name: "binary refused", in: "Content-Transfer-Encoding: binary\r\n" + minimal + "hi", err: ErrEncoding},
		{name: "charset latin1 refused", in: "Content-Type: text/plain; charset=latin1\r\n" + minimal + "caf\xe9", err: ErrCharset},
		{name: "charset iso-8859-1 refused", in: "Content-Type: text/html-lite; charset=ISO-8859-1\r\n" + minimal + "hi", err: ErrCharset},
		{name: "text/html refused", in: "Content-Type: text/html\r\n" + minimal + "hi", err: ErrContentType},
		{name: "multipart refused", in: "Content-Type: multipart/mixed; boundary=x\r\n" + minimal + "--x\r\n\r\nhi\r\n--x--", err: ErrContentType},
		{name: "malformed Content-Type", in: "Content-Type: text/\r\n" + minimal + "hi", err: ErrContentType},
		{name: "empty Content-Type", in: "Content-Type:\r\n" + minimal + "hi", err: ErrContentType},
		{name: "invalid UTF-8", in: minimal + "caf\xe9", err: ErrUTF8},
		{name: "overlong UTF-8", in: minimal + "\xc0\xaf", err: ErrUTF8},
		{name: "NUL", in: minimal + "a\x00b", err: ErrControl},
		{name: "escape sequence", in: minimal + "\x1b]0;pwned\x07", err: ErrControl},
		{name: "injection: bare LF in header", in: "From: alice@alpha.example\nTo: bob@beta.example\r\n\r\nhi", err: ErrHeader},
		{name: "injection: bare CR in X- header", in: "X-A: 1\rBcc: eve@gamma.example\r\n" + minimal, err: ErrHeader},
		{name: "LF-only message", in: "From: alice@alpha.example\nTo: bob@beta.example\n\nhi", err: ErrHeader},
		{name: "line without colon", in: "From alice@alpha.example\r\n" + minimal, err: ErrHeader},
		{name: "space before colon", in: "From : alice@alpha.example\r\nTo: bob@beta.example\r\n\r\n", err: ErrHeader},
		{name: "continuation first", in: " x\r\n" + minimal, err: ErrHeader},
		{name: "header without CRLF", in: "From: alice@alpha.example\r\nTo: bob@beta.example", err: ErrHeader},
		{name: "non-ASCII field name", in: "X-Grüße: 1\r\n" + minimal, err: ErrHeader},
		{name: "NUL in value", in: "X-A: 1\x002\r\n" + minimal, err: ErrHeader},
		{name: "escape in value", in: "X-A: \x1b[2J\r\n" + minimal, err: ErrHeader},
		{name: "invalid UTF-8 in value", in: "X-A: \xff\r\n" + minimal, err: ErrHeader},
		{name: "invalid From", in: "From: alice\r\nTo: bob@beta.example\r\n\r\n", err: ErrHeader},
		{name: "bad Date", in: "Date: yesterday\r\n" + minimal, err: ErrHeader},
		{name: "Date with unknown zone", in: "Date: Sat, 14 Mar 2026 15:09:26 XYZ\r\n" + minimal, err: ErrHeader},
		{name: "Date with a comment", in: "Date: Sat, 14 Mar 2026 15:09:26 +0000 (UTC)\r\n" + minimal, err: ErrHeader},
		{name: "Date before 1900", in: "Date: 14 Mar 1899 15:09:26 +0000\r\n" + minimal, err: ErrHeader},
		{name: "Date past 9999 in UTC", in: "Date: 31 Dec 9999 23:30:00 -0100\r\n" + minimal, err: ErrHeader},
		{name: "Date with a fraction of a second", in: "Date: 14 Mar 2026 15:09:26.5 +0000\r\n" + minimal, err: ErrHeader},
		{name: "Date with a day name only", in: "Date: Sat, +0000\r\n" + minimal, err: ErrHeader},
		{name: "Message-ID without at-sign", in: "Message-ID: <abc>\r\n" + minimal, err: ErrHeader},
		{name: "Message-ID without brackets", in: "Message-ID: abc@alpha.example\r\n" + minimal, err: ErrHeader},
		{name: "Message-ID with space", in: "Message-ID: <a b@alpha.example>\r\n" + minimal, err: ErrHeader},
		{name: "MIME-Version 2.0", in: "MIME-Version: 2.0\r\n" + minimal, err: ErrHeader},
		{name: "empty message", in: "", err: ErrHeader},
		{name: "only a blank line", in: "\r\n", err: ErrHeader},
	}
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests() {
		t.Run(tt.name, func(t *testing.T) {
			env, domain := envelope, "alpha.example"
			if tt.env != nil {
				env = *tt.env
			}
			if tt.domain != "" {
				domain = tt.domain
			}
			m, canon, err := Parse([]byte(tt.in), env, domain, tt.maxSize)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse: err = %v, want %v", err, tt.err)
				}
				if canon != nil || !reflect.DeepEqual(m, Message{}) {
					t.Errorf("Parse returned a message with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.want != "" && string(canon) != tt.want {
				t.Errorf("canonical form:\n got %q\nwant %q", canon, tt.want)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
			// The canonical form parses to the same message and is a fixed point.
			m2, canon2, err := Parse(canon, env, domain, 0)
			if err != nil {
				t.Fatalf("Parse(canonical): %v", err)
			}
			if !reflect.DeepEqual(m, m2) || string(canon2) != string(canon) {
				t.Errorf("Parse(canonical) differs:\n got %+v %q\nwant %+v %q", m2, canon2, m, canon)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		err  error
		want wire.Status
	}{
		{nil, wire.StatusOK},
		{ErrTooLarge, wire.StatusTooLarge},
		{ErrSenderDomain, wire.StatusNotAuthorized},
		{ErrFromMismatch, wire.StatusNotAuthorized},
		{ErrToMismatch, wire.StatusBadRequest},
		{ErrContentType, wire.StatusBadRequest},
		{ErrCharset, wire.StatusBadRequest},
		{ErrEncoding, wire.StatusBadRequest},
		{ErrHeader, wire.StatusBadRequest},
		{ErrUTF8, wire.StatusBadRequest},
		{ErrControl, wire.StatusBadRequest},
		{wire.StatusBusy, wire.StatusBusy},
		{errors.New("disk on fire"), wire.StatusInternal},
	}
	for _, tt := range tests {
		if got := Status(tt.err); got != tt.want {
			t.Errorf("Status(%v) = %v, want %v", tt.err, got, tt.want)
		}
		if tt.err == nil {
			continue
		}
		wrapped := fmt.Errorf("router: message 42: %w", tt.err)
		if got := Status(wrapped); got != tt.want {
			t.Errorf("Status(%v) = %v, want %v", wrapped, got, tt.want)
		}
	}
	// A real error from Parse carries its detail and maps through.
	_, _, err := Parse([]byte("Content-Transfer-Encoding: base64\r\n"+minimal), envelope, "alpha.example", 0)
	if Status(err) != wire.StatusBadRequest || !strings.Contains(err.Error(), "base64") {
		t.Errorf("Parse base64: %v, status %v", err, Status(err))
	}
}
