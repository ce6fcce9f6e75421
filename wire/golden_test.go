package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.hex from the records in goldenRecords")

// body200 is a 200-byte MIME body used by the MESSAGE vector and the
// benchmarks: headers of §5 and a text/plain body.
var body200 = func() []byte {
	s := "From: alice@alpha.example\r\nTo: bob@beta.example\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Hello Bob! This paragraph is sent as one long line, as section 5 of the draft asks"
	s += strings.Repeat(".", 200-len(s))
	return []byte(s)
}()

// goldenRecords are the hex examples of docs/protocol.md: each is encoded
// and compared with testdata/golden/NAME.hex, and that file is parsed back
// and compared with the record.
var goldenRecords = []struct {
	name string
	rec  Record
}{
	{"hello", &Hello{Head: Head{Tag: 1}, MinVersion: 1, MaxVersion: 1, Capabilities: []string{"dialback", "tls"}, Software: "imx/0.1", MaxFrame: 262144}},
	{"hello-response", &Hello{Head: Head{Tag: 1, Flags: FlagResponse}, MinVersion: 1, MaxVersion: 1, Capabilities: []string{"dialback"}, Software: "imx/0.1"}},
	{"close", &Close{Code: StatusIdle, Text: "idle for 600 s"}},
	{"redirect", &Redirect{Host: "imx2.beta.example", Port: 7468, Text: "draining"}},
	{"ping", &Ping{Head: Head{Tag: 7}, Data: []byte{0xca, 0xfe}}},
	{"pong", &Pong{Head: Head{Flags: FlagResponse, Tag: 7}, Data: []byte{0xca, 0xfe}}},
	{"result-delivered", &Result{Head: Head{Flags: FlagResponse, Tag: 0x2a, Node: "n1"}, Code: StatusDelivered, Count: 2}},
	{"result-unknown-user", &Result{Head: Head{Flags: FlagResponse, Tag: 0x2b}, Code: StatusUnknownUser, Text: "no such user"}},
	{"result-subscribed", &Result{Head: Head{Flags: FlagResponse, Tag: 0x2c}, Code: StatusOK, Expires: 1800, Presence: PresenceAway, Status: "lunch", Attrs: []Attr{{"alias", "Bob"}}}},
	{"db-token", &DBToken{Head: Head{Tag: 0x10}, From: "beta.example", To: "alpha.example", Token: []byte("0123456789abcdef")}},
	{"db-verify", &DBVerify{Head: Head{Tag: 0x11}, From: "alpha.example", To: "beta.example", Token: []byte("0123456789abcdef"), Secret: bytes.Repeat([]byte{0x5a}, 16)}},
	{"db-secret", &DBSecret{From: "beta.example", To: "alpha.example", Secret: bytes.Repeat([]byte{0x5a}, 16)}},
	{"db-outcome", &DBOutcome{Head: Head{Flags: FlagResponse, Tag: 0x10}, From: "alpha.example", To: "beta.example", Code: StatusOK}},
	{"message", &Message{Head: Head{Tag: 0x2a}, From: "alice@alpha.example", To: "bob@beta.example", ID: []byte{0x01, 0x93, 0x5b, 0x10, 0xc4, 0x7e, 0x70, 0x00, 0x8a, 0x31, 0x1f, 0xd2, 0x66, 0x4b, 0x09, 0xe7}, MIME: body200}},
	{"message-attrs", &Message{Head: Head{Tag: 0x2d, Node: "n1"}, From: "alice@alpha.example", To: "bob@beta.example", ID: []byte{0x02}, MIME: []byte("From: alice@alpha.example\r\nTo: bob@beta.example\r\n\r\nhi"), Attrs: []Attr{{"alias", "Alice"}, {"presence", "online"}}}},
	{"subscribe", &Subscribe{Head: Head{Tag: 0x30}, Watcher: "alice@alpha.example", Presentity: "bob@beta.example", Expires: 3600}},
	{"unsubscribe", &Unsubscribe{Head: Head{Tag: 0x31}, Watcher: "alice@alpha.example", Presentity: "bob@beta.example"}},
	{"notify", &Notify{Presentity: "bob@beta.example", Watchers: []string{"alice@alpha.example", "carol@alpha.example"}, Presence: PresenceBusy, Status: "in a meeting"}},
	{"get-attributes", &GetAttrs{Head: Head{Tag: 0x40}, Requester: "alice@alpha.example", Target: "beta.example", Names: []string{"subscription-timeout", "max-message-size"}}},
	{"attributes", &Attrs{Head: Head{Flags: FlagResponse, Tag: 0x40}, Target: "beta.example", Attrs: []Attr{{"subscription-timeout", "1800"}, {"max-message-size", "65536"}}}},
	{"unknown", &Unknown{Head: Head{Tag: 9}, RecordType: 0xF001, Body: []byte{0x01, 0x03, 0x02, 'h', 'i'}}},
	{"login", &Login{Head: Head{Tag: 1}, User: "alice@alpha.example", Password: "correct horse", Client: "imx-cli/0.1", Remember: true}},
	{"login-session", &Login{Head: Head{Tag: 2}, User: "alice@alpha.example", Session: bytes.Repeat([]byte{0xa5}, 32)}},
	{"session", &Session{Head: Head{Tag: 1, Flags: FlagResponse}, User: "alice@alpha.example", Session: bytes.Repeat([]byte{0xa5}, 32), Expires: 2592000, ID: "s7"}},
	{"send", &Send{Head: Head{Tag: 3}, To: "bob@beta.example", ContentType: "text/plain", Body: "Hello Bob!", ID: []byte{0x01}}},
	{"contact-add", &ContactAdd{Head: Head{Tag: 5}, Address: "bob@beta.example", Alias: "Bob"}},
	{"contact-remove", &ContactRemove{Head: Head{Tag: 6}, Address: "bob@beta.example"}},
	{"contacts", &Contacts{Head: Head{Tag: 7}}},
	{"contact-list", &ContactList{Head: Head{Tag: 7, Flags: FlagResponse}, Contacts: []string{"bob@beta.example approved Bob", "carol@gamma.example asked"}}},
	{"approve", &Approve{Head: Head{Tag: 8}, Address: "alice@alpha.example", Approve: true}},
	{"presence-set", &PresenceSet{Head: Head{Tag: 9}, Presence: PresenceAway, Status: "back at 3"}},
	{"block", &Block{Head: Head{Tag: 10}, Pattern: "@spam.example", Block: true}},
	{"request", &Request{Watcher: "alice@alpha.example", Alias: "Alice"}},
	{"attributes-set", &AttrsSet{Head: Head{Tag: 11}, Attrs: []Attr{{"alias", "Alice Liddell"}, {"capabilities", "html-lite"}}}},
	{"send-html", &Send{Head: Head{Tag: 4}, To: "bob@beta.example", ContentType: "text/html-lite", Body: "<b>Hello</b> Bob", Attrs: []Attr{{"x-client", "imx-web"}}}},
}

// readHex reads an annotated hex file: '#' starts a comment, white space is
// ignored.
func readHex(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeAnnotatedHex(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func decodeAnnotatedHex(s string) ([]byte, error) {
	var clean strings.Builder
	for line := range strings.Lines(s) {
		line, _, _ = strings.Cut(line, "#")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(clean.String())
}

func TestGolden(t *testing.T) {
	for _, g := range goldenRecords {
		t.Run(g.name, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.name+".hex")
			prefix := []byte("prefix")
			b, err := g.rec.AppendBinary(append([]byte(nil), prefix...))
			if err != nil {
				t.Fatalf("AppendBinary: %v", err)
			}
			if !bytes.HasPrefix(b, prefix) {
				t.Fatalf("AppendBinary clobbered the prefix")
			}
			b = b[len(prefix):]
			if *update {
				if err := os.WriteFile(path, []byte(annotate(b)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readHex(t, path)
			if !bytes.Equal(b, want) {
				t.Errorf("encode:\n got %x\nwant %x", b, want)
			}
			got, err := Parse(want)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, g.rec) {
				t.Errorf("Parse:\n got %#v\nwant %#v", got, g.rec)
			}
		})
	}
}

// TestGoldenInDocs checks that docs/protocol.md and docs/client-api.md
// show every golden vector, byte for byte, in a fenced block introduced by
// "<!-- golden: NAME -->".
func TestGoldenInDocs(t *testing.T) {
	var doc []byte
	for _, f := range []string{"../docs/protocol.md", "../docs/client-api.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc = append(doc, b...)
	}
	re := regexp.MustCompile("(?s)<!-- golden: ([a-z0-9-]+) -->\\s*```[a-z]*\\n(.*?)```")
	shown := map[string][]byte{}
	for _, m := range re.FindAllSubmatch(doc, -1) {
		b, err := decodeAnnotatedHex(string(m[2]))
		if err != nil {
			t.Errorf("docs/protocol.md example %s: %v", m[1], err)
		}
		shown[string(m[1])] = b
	}
	files, _ := filepath.Glob("testdata/golden/*.hex")
	if len(files) < len(goldenRecords) {
		t.Fatalf("%d golden files, want %d", len(files), len(goldenRecords))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".hex")
		b, ok := shown[name]
		if !ok {
			t.Errorf("docs do not show golden vector %s", name)
			continue
		}
		if want := readHex(t, f); !bytes.Equal(b, want) {
			t.Errorf("docs/protocol.md example %s differs from %s", name, f)
		}
	}
	for name := range shown {
		if _, err := os.Stat(filepath.Join("testdata", "golden", name+".hex")); err != nil {
			t.Errorf("docs/protocol.md shows example %s, which has no golden file", name)
		}
	}
}

// TestBadVectors parses every testdata/bad/*.hex file and checks the error
// that its "# expect:" line names.
func TestBadVectors(t *testing.T) {
	problems := map[string]error{
		"truncated": ErrTruncated, "length": ErrLength, "too-large": ErrFrameTooLarge,
		"malformed": ErrMalformed, "field-kind": ErrFieldKind, "utf8": ErrInvalidUTF8,
		"missing": ErrMissingField, "duplicate": ErrDuplicateField, "range": ErrOutOfRange,
		"header": ErrBadHeader, "unsupported": ErrUnsupported,
	}
	files, _ := filepath.Glob("testdata/bad/*.hex")
	if len(files) < len(problems) {
		t.Fatalf("%d bad vectors, want at least one per problem (%d)", len(files), len(problems))
	}
	covered := map[string]bool{}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, _ := os.ReadFile(f)
			m := regexp.MustCompile(`# expect: ([a-z0-9-]+)(?: field ([^\n]+))?`).FindSubmatch(raw)
			if m == nil {
				t.Fatal("no '# expect: PROBLEM [field NAME]' line")
			}
			want, ok := problems[string(m[1])]
			if !ok {
				t.Fatalf("unknown problem %q", m[1])
			}
			covered[string(m[1])] = true
			_, err := Parse(readHex(t, f))
			if !errors.Is(err, want) {
				t.Fatalf("Parse error = %v, want %v", err, want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
			if len(m[2]) > 0 && fe.Field != string(m[2]) {
				t.Errorf("error names field %q, want %q (%v)", fe.Field, m[2], err)
			}
		})
	}
	for name := range problems {
		if !covered[name] {
			t.Errorf("no bad vector for problem %s", name)
		}
	}
}

// annotate renders a frame as annotated hex: the header on one line, then
// one line per field (long values continue on following lines), each with a
// comment saying what it is.
func annotate(frame []byte) string {
	var sb strings.Builder
	h, _ := ParseHeader(frame)
	fmt.Fprintf(&sb, "%04x %04x %08x %08x  # header: %s, flags 0x%x, tag %d, body %d bytes\n",
		uint16(h.Type), uint16(h.Flags), h.Tag, h.Len, h.Type, uint16(h.Flags), h.Tag, h.Len)
	body := frame[HeaderLen:]
	rs := specOf(h.Type)
	if rs == nil {
		writeHexLines(&sb, body, "opaque body of an unknown type")
		return sb.String()
	}
	for off := 0; off < len(body); {
		key, kind := body[off], Kind(body[off+1])
		n, vn, _ := readUvarint(body[off+2:])
		head := body[off : off+2+vn]
		val := body[off+2+vn : off+2+vn+int(n)]
		off += 2 + vn + int(n)
		name := keyName(rs, key)
		var desc string
		switch kind {
		case KindUint:
			f := field{spec: &fieldSpec{kind: KindUint, max: ^uint64(0)}, val: val}
			_ = decodeValue(rs, &f)
			desc = fmt.Sprintf("%s (uint): %d", name, f.u)
		case KindText:
			desc = fmt.Sprintf("%s (text): %s", name, strconv.Quote(string(val)))
		case KindBytes:
			desc = fmt.Sprintf("%s (bytes, %d)", name, len(val))
		case KindAttr:
			nl := int(val[0])
			desc = fmt.Sprintf("%s (attr): %s = %s", name, val[1:1+nl], strconv.Quote(string(val[1+nl:])))
		}
		line := hex.EncodeToString(head[:1]) + " " + hex.EncodeToString(head[1:2]) + " " + hex.EncodeToString(head[2:])
		if len(val) <= 24 {
			fmt.Fprintf(&sb, "%-62s  # %s\n", line+" "+hex.EncodeToString(val), desc)
			continue
		}
		fmt.Fprintf(&sb, "%-62s  # %s\n", line, desc)
		writeHexLines(&sb, val, "")
	}
	return sb.String()
}

func writeHexLines(sb *strings.Builder, b []byte, comment string) {
	for i := 0; i < len(b); i += 32 {
		chunk := hex.EncodeToString(b[i:min(i+32, len(b))])
		if comment != "" && i == 0 {
			fmt.Fprintf(sb, "  %-62s  # %s\n", chunk, comment)
		} else {
			fmt.Fprintf(sb, "  %s\n", chunk)
		}
	}
}

// TestStatusTableInDocs checks that docs/protocol.md lists every status
// code with its number and name, and nothing else.
func TestStatusTableInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\| 0x([0-9A-F]{4}) \\| `([a-z-]+)` \\|").FindAllSubmatch(doc, -1)
	listed := map[Status]string{}
	for _, m := range rows {
		v, _ := strconv.ParseUint(string(m[1]), 16, 16)
		listed[Status(v)] = string(m[2])
	}
	for _, s := range Statuses() {
		if listed[s] != s.String() {
			t.Errorf("docs/protocol.md lists 0x%04X as %q, want %q", uint16(s), listed[s], s)
		}
		delete(listed, s)
	}
	for s, n := range listed {
		t.Errorf("docs/protocol.md lists 0x%04X %q, which wire does not define", uint16(s), n)
	}
}
