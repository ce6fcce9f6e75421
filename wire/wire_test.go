package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func encode(t testing.TB, r Record) []byte {
	t.Helper()
	b, err := r.AppendBinary(nil)
	if err != nil {
		t.Fatalf("AppendBinary(%T): %v", r, err)
	}
	return b
}

// TestEncodeRejectsInvalid checks that AppendBinary refuses records that
// Parse would refuse, names the problem, and leaves b as it was.
func TestEncodeRejectsInvalid(t *testing.T) {
	long := strings.Repeat("a", MaxAddressLen+1)
	tests := []struct {
		name  string
		rec   Record
		want  error
		field string
	}{
		{"message without tag", &Message{From: "a@b", To: "c@d", ID: []byte{1}, MIME: []byte("x")}, ErrBadHeader, ""},
		{"message without from", &Message{Head: Head{Tag: 1}, To: "c@d", ID: []byte{1}, MIME: []byte("x")}, ErrMissingField, "from"},
		{"message without body", &Message{Head: Head{Tag: 1}, From: "a@b", To: "c@d", ID: []byte{1}}, ErrMissingField, "mime"},
		{"address too long", &Message{Head: Head{Tag: 1}, From: long, To: "c@d", ID: []byte{1}, MIME: []byte("x")}, ErrOutOfRange, "from"},
		{"invalid UTF-8", &Message{Head: Head{Tag: 1}, From: "a\xffb", To: "c@d", ID: []byte{1}, MIME: []byte("x")}, ErrInvalidUTF8, "from"},
		{"attr name upper case", &Message{Head: Head{Tag: 1}, From: "a@b", To: "c@d", ID: []byte{1}, MIME: []byte("x"), Attrs: []Attr{{"Alias", "x"}}}, ErrOutOfRange, "attr"},
		{"attr name too long", &Attrs{Head: Head{Tag: 1}, Target: "b", Attrs: []Attr{{strings.Repeat("a", 300), "x"}}}, ErrOutOfRange, "attr"},
		{"attr value invalid", &Attrs{Head: Head{Tag: 1}, Target: "b", Attrs: []Attr{{"alias", "\xc3("}}}, ErrInvalidUTF8, "attr"},
		{"hello versions reversed", &Hello{Head: Head{Tag: 1}, MinVersion: 2, MaxVersion: 1}, ErrOutOfRange, "version-max"},
		{"hello version zero", &Hello{Head: Head{Tag: 1}}, ErrOutOfRange, "version-min"},
		{"hello max-frame too small", &Hello{Head: Head{Tag: 1}, MinVersion: 1, MaxVersion: 1, MaxFrame: 100}, ErrOutOfRange, "max-frame"},
		{"capability not a token", &Hello{Head: Head{Tag: 1}, MinVersion: 1, MaxVersion: 1, Capabilities: []string{"TLS"}}, ErrOutOfRange, "capability"},
		{"redirect port 0", &Redirect{Host: "h"}, ErrOutOfRange, "port"},
		{"short secret", &DBSecret{From: "a", To: "b", Secret: make([]byte, 15)}, ErrOutOfRange, "secret"},
		{"notify without watchers", &Notify{Presentity: "a@b", Presence: PresenceOnline}, ErrMissingField, "watcher"},
		{"notify without presence", &Notify{Presentity: "a@b", Watchers: []string{"c@d"}}, ErrOutOfRange, "presence"},
		{"subscribe expires 0", &Subscribe{Head: Head{Tag: 1}, Watcher: "a@b", Presentity: "c@d"}, ErrOutOfRange, "expires"},
		{"ping data too long", &Ping{Head: Head{Tag: 1}, Data: make([]byte, MaxPingDataLen+1)}, ErrOutOfRange, "data"},
		{"node too long", &Ping{Head: Head{Tag: 1, Node: strings.Repeat("n", MaxNodeLen+1)}}, ErrOutOfRange, "node"},
		{"unknown with known type", &Unknown{RecordType: TypeMessage}, ErrBadHeader, ""},
		{"message too large", &Message{Head: Head{Tag: 1}, From: "a@b", To: "c@d", ID: []byte{1}, MIME: make([]byte, MaxFrameBody)}, ErrFrameTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{9, 9, 9}
			b, err := tt.rec.AppendBinary(prefix)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var fe *FormatError
			if errors.As(err, &fe) && fe.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", fe.Field, tt.field, err)
			}
			if !bytes.Equal(b, prefix) {
				t.Errorf("b = %x, want the prefix %x unchanged", b, prefix)
			}
		})
	}
}

// TestFlagsSetByEncoder checks that encoders set the response flag on
// responses and clear it on requests, and drop undefined flag bits.
func TestFlagsSetByEncoder(t *testing.T) {
	b := encode(t, &Result{Head: Head{Tag: 5, Flags: 0xFF00}, Code: StatusOK})
	h, _ := ParseHeader(b)
	if h.Flags != FlagResponse {
		t.Errorf("RESULT flags = %#x, want FlagResponse only", h.Flags)
	}
	b = encode(t, &Ping{Head: Head{Tag: 5, Flags: FlagResponse | FlagMustUnderstand}})
	h, _ = ParseHeader(b)
	if h.Flags != FlagMustUnderstand {
		t.Errorf("PING flags = %#x, want FlagMustUnderstand only", h.Flags)
	}
}

// TestUnknownSkipped checks §4.4.2: an unknown field key, and an unknown
// record type, are skipped when the frame is not must-understand.
func TestUnknownSkipped(t *testing.T) {
	want := &Unsubscribe{Head: Head{Tag: 3}, Watcher: "a@b", Presentity: "c@d"}
	b := encode(t, want)
	// Append a field of unknown key 0x70 and unknown kind 0x09, and one of
	// unknown key 0x71 with kind uint, then fix the body length.
	b = append(b, 0x70, 0x09, 0x03, 1, 2, 3, 0x71, 0x01, 0x01, 0x05)
	b[11] += 10
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}

	// The same frame marked must-understand is unsupported.
	b[3] |= byte(FlagMustUnderstand)
	_, err = Parse(b)
	if !errors.Is(err, ErrUnsupported) || StatusOf(err) != StatusUnsupported {
		t.Errorf("must-understand with unknown key: err = %v (status %v), want unsupported", err, StatusOf(err))
	}

	u := &Unknown{Head: Head{Tag: 4}, RecordType: 0x0300, Body: []byte("anything at all")}
	got, err = Parse(encode(t, u))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, u) {
		t.Errorf("unknown type: got %#v, want %#v", got, u)
	}
}

func TestStatus(t *testing.T) {
	for _, s := range Statuses() {
		n := s.String()
		if got, ok := ParseStatus(n); !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", n, got, ok)
		}
		classes := 0
		for _, c := range []bool{s.Success(), s.Temporary(), s.Permanent()} {
			if c {
				classes++
			}
		}
		if classes != 1 {
			t.Errorf("%v is in %d classes", s, classes)
		}
	}
	if got := Status(0x0333).String(); got != "status-0x0333" {
		t.Errorf("unknown status String = %q", got)
	}
	if !Status(0x0333).Permanent() || Status(0x0333).Known() {
		t.Error("an unassigned status must count as a permanent failure")
	}
	var err error = StatusUnknownUser
	if !errors.Is(err, StatusUnknownUser) || err.Error() != "imx: unknown-user" {
		t.Errorf("Status as error: %v", err)
	}
	if StatusOf(nil) != StatusOK || StatusOf(io.EOF) != StatusInternal || StatusOf(StatusBusy) != StatusBusy {
		t.Error("StatusOf")
	}
	r := &Result{Code: StatusDelivered}
	if r.Err() != nil {
		t.Errorf("delivered Result.Err = %v", r.Err())
	}
	r.Code = StatusRateLimited
	if !errors.Is(r.Err(), StatusRateLimited) {
		t.Errorf("rate-limited Result.Err = %v", r.Err())
	}
}

func TestTypeString(t *testing.T) {
	if TypeGetAttrs.String() != "GET-ATTRIBUTES" || Type(0xF00D).String() != "TYPE-0xF00D" {
		t.Errorf("Type.String: %s %s", TypeGetAttrs, Type(0xF00D))
	}
	if !TypeMessage.Known() || Type(0x26).Known() {
		t.Error("Type.Known")
	}
}

func TestFormatErrorMessage(t *testing.T) {
	_, err := Parse(readHex(t, "testdata/bad/invalid-utf8.hex"))
	if got, want := err.Error(), "wire: MESSAGE field from: invalid UTF-8"; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

// oneByteReader delivers its input one byte per Read.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// chunkReader delivers its input in chunks of random sizes.
type chunkReader struct {
	b   []byte
	rnd *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.b), 1+c.rnd.IntN(40))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func goldenStream(t testing.TB) ([]byte, []Record) {
	var stream []byte
	var recs []Record
	for _, g := range goldenRecords {
		stream = encodeTo(t, stream, g.rec)
		recs = append(recs, g.rec)
	}
	return stream, recs
}

func encodeTo(t testing.TB, b []byte, r Record) []byte {
	t.Helper()
	b, err := r.AppendBinary(b)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, rd *Reader) []Record {
	t.Helper()
	var got []Record
	for {
		r, err := rd.ReadRecord()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		got = append(got, r)
	}
}

// TestReaderSplit feeds every golden frame through the Reader one byte at a
// time and in random chunks.
func TestReaderSplit(t *testing.T) {
	stream, want := goldenStream(t)
	for name, r := range map[string]io.Reader{
		"one byte": oneByteReader{bytes.NewReader(stream)},
		"chunks":   &chunkReader{b: stream, rnd: rand.New(rand.NewPCG(1, 2))},
		"whole":    bytes.NewReader(stream),
	} {
		t.Run(name, func(t *testing.T) {
			got := readAll(t, NewReader(r, 0))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %d records, want %d; first difference:", len(got), len(want))
				for i := range min(len(got), len(want)) {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("[%d] got %#v want %#v", i, got[i], want[i])
						break
					}
				}
			}
		})
	}
}

// TestReaderLimit checks that a body over the limit is refused before it is
// read, that Skip resynchronises without allocating the body, and that
// reading goes on.
func TestReaderLimit(t *testing.T) {
	big := &Message{Head: Head{Tag: 1}, From: "a@b", To: "c@d", ID: []byte{1}, MIME: make([]byte, 100_000)}
	small := &Ping{Head: Head{Tag: 2}}
	var stream []byte
	stream = encodeTo(t, stream, big)
	stream = encodeTo(t, stream, small)
	rd := NewReader(bytes.NewReader(stream), 8192)

	_, err := rd.ReadRecord()
	if !errors.Is(err, ErrFrameTooLarge) || StatusOf(err) != StatusTooLarge {
		t.Fatalf("err = %v, want frame too large", err)
	}
	if _, err := rd.ReadRecord(); err == nil {
		t.Fatal("ReadRecord after a refused frame without Skip succeeded")
	}
	allocs := testing.AllocsPerRun(1, func() {
		if err := rd.Skip(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("Skip allocated %.0f times", allocs)
	}
	got, err := rd.ReadRecord()
	if err != nil || !reflect.DeepEqual(got, small) {
		t.Fatalf("after Skip: %#v, %v", got, err)
	}
}

// TestReaderLyingLength checks a header whose length exceeds what follows:
// the Reader reports an unexpected EOF and allocates no more than the limit.
func TestReaderLyingLength(t *testing.T) {
	b := encode(t, &Ping{Head: Head{Tag: 1}, Data: []byte("abc")})
	b[8], b[9], b[10], b[11] = 0, 0, 0x10, 0 // claims 4096 bytes
	rd := NewReader(bytes.NewReader(b), 8192)
	if _, err := rd.ReadRecord(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	// Header cut short.
	rd = NewReader(bytes.NewReader(b[:7]), 0)
	if _, err := rd.ReadRecord(); err != io.ErrUnexpectedEOF {
		t.Fatalf("short header: err = %v, want io.ErrUnexpectedEOF", err)
	}
	// A frame that parses wrong keeps the stream in step.
	bad := readHex(t, "testdata/bad/invalid-utf8.hex")
	stream := append(bad, encode(t, &Ping{Head: Head{Tag: 9}})...)
	rd = NewReader(bytes.NewReader(stream), 0)
	if _, err := rd.ReadRecord(); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("err = %v, want invalid UTF-8", err)
	}
	if r, err := rd.ReadRecord(); err != nil || r.FrameHead().Tag != 9 {
		t.Fatalf("next frame: %v, %v", r, err)
	}
}

func TestReaderLimits(t *testing.T) {
	rd := NewReader(bytes.NewReader(nil), 0)
	if rd.MaxBody() != DefaultMaxFrameBody {
		t.Errorf("default MaxBody = %d", rd.MaxBody())
	}
	rd.SetMaxBody(MaxFrameBody + 1)
	if rd.MaxBody() != MaxFrameBody {
		t.Errorf("MaxBody above the absolute limit = %d", rd.MaxBody())
	}
	if _, err := rd.ReadRecord(); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}

func TestWriteRecord(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	stream, want := goldenStream(t)
	for _, r := range want {
		if err := WriteRecord(w, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), stream) {
		t.Error("WriteRecord output differs from AppendBinary")
	}
	if err := WriteRecord(w, &Ping{}); !errors.Is(err, ErrBadHeader) {
		t.Errorf("WriteRecord of an invalid record: %v", err)
	}
}

// TestEncodeAllocs checks the 0 allocs/op target of encoding into a buffer
// with room.
func TestEncodeAllocs(t *testing.T) {
	m := benchMessage()
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := m.AppendBinary(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("MESSAGE AppendBinary: %.1f allocs/op, want 0", allocs)
	}
}

func benchMessage() *Message {
	return &Message{
		Head: Head{Tag: 0x2a},
		From: "alice@alpha.example", To: "bob@beta.example",
		ID:   []byte{0x01, 0x93, 0x5b, 0x10, 0xc4, 0x7e, 0x70, 0x00, 0x8a, 0x31, 0x1f, 0xd2, 0x66, 0x4b, 0x09, 0xe7},
		MIME: body200,
	}
}

func BenchmarkEncodeMessage(b *testing.B) {
	m := benchMessage()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(encode(b, m))))
	for b.Loop() {
		if _, err := m.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	frame := encode(b, benchMessage())
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := Parse(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDecodeMessage(b *testing.B) {
	m := benchMessage()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		frame, err := m.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Parse(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReaderMessage reads MESSAGE frames from a stream through Reader
// and parses them, as a connection's read loop does.
func BenchmarkReaderMessage(b *testing.B) {
	frame := encode(b, benchMessage())
	stream := bytes.Repeat(frame, 1000)
	br := bytes.NewReader(stream)
	rd := NewReader(br, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := rd.ReadRecord(); err != nil {
			if err != io.EOF {
				b.Fatal(err)
			}
			br.Reset(stream)
			rd = NewReader(br, 0)
		}
	}
}

// normalize turns empty non-nil slices into nil, so that records from a
// Decoder (which keeps slice capacity) compare equal to records from Parse.
func normalize(r Record) Record {
	switch r := r.(type) {
	case *Hello:
		c := *r
		if len(c.Capabilities) == 0 {
			c.Capabilities = nil
		}
		return &c
	case *Result:
		c := *r
		if len(c.Attrs) == 0 {
			c.Attrs = nil
		}
		return &c
	case *Message:
		c := *r
		if len(c.Attrs) == 0 {
			c.Attrs = nil
		}
		return &c
	case *Notify:
		c := *r
		if len(c.Attrs) == 0 {
			c.Attrs = nil
		}
		return &c
	case *GetAttrs:
		c := *r
		if len(c.Names) == 0 {
			c.Names = nil
		}
		return &c
	case *Attrs:
		c := *r
		if len(c.Attrs) == 0 {
			c.Attrs = nil
		}
		return &c
	case *Send:
		c := *r
		if len(c.Attrs) == 0 {
			c.Attrs = nil
		}
		return &c
	case *AttrsSet:
		c := *r
		if len(c.Attrs) == 0 {
			c.Attrs = nil
		}
		return &c
	case *ContactList:
		c := *r
		if len(c.Contacts) == 0 {
			c.Contacts = nil
		}
		return &c
	}
	return r
}

// TestDecoder decodes every golden vector twice through one Decoder, in
// an order that makes each reused record hold stale values first, and
// compares with Parse.
func TestDecoder(t *testing.T) {
	var d Decoder
	for round := range 2 {
		for i := range goldenRecords {
			g := goldenRecords[(i*7+round)%len(goldenRecords)]
			frame := encode(t, g.rec)
			h, _ := ParseHeader(frame)
			got, err := d.Decode(h, frame[HeaderLen:])
			if err != nil {
				t.Fatalf("%s: %v", g.name, err)
			}
			if !reflect.DeepEqual(normalize(got), g.rec) {
				t.Errorf("%s: Decode = %#v, want %#v", g.name, got, g.rec)
			}
			kept, err := Clone(got)
			if err != nil || !reflect.DeepEqual(kept, g.rec) {
				t.Errorf("%s: Clone = %#v, %v", g.name, kept, err)
			}
		}
	}
	// Errors come out the same as from Parse.
	bad := readHex(t, "testdata/bad/duplicate-field.hex")
	h, _ := ParseHeader(bad)
	if _, err := d.Decode(h, bad[HeaderLen:]); !errors.Is(err, ErrDuplicateField) {
		t.Errorf("Decode of a bad frame: %v", err)
	}
}

// TestDecoderAllocs checks that decoding a MESSAGE through a Decoder
// allocates nothing once its strings are interned.
func TestDecoderAllocs(t *testing.T) {
	frame := encode(t, benchMessage())
	h, _ := ParseHeader(frame)
	var d Decoder
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := d.Decode(h, frame[HeaderLen:]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decoder.Decode of MESSAGE: %.1f allocs/op, want 0", allocs)
	}
}

// TestInternerBounded checks that the intern table never grows past its
// bound, whatever the input.
func TestInternerBounded(t *testing.T) {
	var in interner
	for i := range internMaxEntries * 3 {
		in.get([]byte(itoa(uint64(i))))
	}
	if len(in.m) > internMaxEntries {
		t.Errorf("intern table has %d entries, bound %d", len(in.m), internMaxEntries)
	}
	long := bytes.Repeat([]byte("x"), internMaxLen+1)
	if s := in.get(long); s != string(long) {
		t.Error("long string mangled")
	}
	if _, ok := in.m[string(long)]; ok {
		t.Error("a string over internMaxLen was interned")
	}
}

// BenchmarkDecoderMessage decodes MESSAGE frames through a Decoder, as a
// connection's read loop does.
func BenchmarkDecoderMessage(b *testing.B) {
	frame := encode(b, benchMessage())
	h, _ := ParseHeader(frame)
	var d Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := d.Decode(h, frame[HeaderLen:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeDecoderMessage is the hot path of the target:
// encode a MESSAGE with a 200-byte body into a reused buffer, then decode
// its header and body through a Decoder.
func BenchmarkEncodeDecoderMessage(b *testing.B) {
	m := benchMessage()
	buf := make([]byte, 0, 1024)
	var d Decoder
	b.ReportAllocs()
	for b.Loop() {
		frame, err := m.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		h, err := ParseHeader(frame)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Decode(h, frame[HeaderLen:]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestInternedTextStillChecked: a string interned from one field does not
// let an invalid value through another: a token field still checks its
// syntax, and passwords are never interned.
func TestInternedTextStillChecked(t *testing.T) {
	var d Decoder
	dec := func(r Record) (Record, error) {
		b := encode(t, r)
		h, _ := ParseHeader(b)
		return d.Decode(h, b[HeaderLen:])
	}
	if _, err := dec(&Close{Text: "TLS"}); err != nil {
		t.Fatal(err)
	}
	// A HELLO whose capability is the interned "TLS": upper case is not a
	// token.
	b := encode(t, &Hello{Head: Head{Tag: 1}, MinVersion: 1, MaxVersion: 1, Capabilities: []string{"tls"}})
	i := bytes.Index(b, []byte("tls"))
	copy(b[i:], "TLS")
	h, _ := ParseHeader(b)
	if _, err := d.Decode(h, b[HeaderLen:]); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("capability TLS after interning TLS: %v", err)
	}
	if _, err := dec(&Login{Head: Head{Tag: 1}, User: "a@b", Password: "hunter22"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range d.in.slots {
		if s == "hunter22" {
			t.Error("a password was interned")
		}
	}
	if _, ok := d.in.m["hunter22"]; ok {
		t.Error("a password was interned")
	}
}

// TestMessageFastPath checks that the fast MESSAGE encoder writes exactly
// what the checked one writes, for messages at and around every bound.
func TestMessageFastPath(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	msgs := []*Message{
		benchMessage(),
		{Head: Head{Tag: 1}, From: "a", To: "b", ID: []byte{1}, MIME: []byte{1}},
		{Head: Head{Tag: 0xFFFFFFFF, Flags: FlagMustUnderstand | FlagResponse}, From: long(MaxAddressLen), To: long(MaxAddressLen), ID: make([]byte, MaxMessageIDLen), MIME: make([]byte, 200)},
		{Head: Head{Tag: 9}, From: "ü@ö.example", To: "x@y", ID: []byte{1}, MIME: make([]byte, 127)},
		{Head: Head{Tag: 9}, From: "a@b", To: "x@y", ID: []byte{1}, MIME: make([]byte, 128)},
		{Head: Head{Tag: 9}, From: "a@b", To: "x@y", ID: []byte{1}, MIME: make([]byte, 70000)},
	}
	for i, m := range msgs {
		if !m.fastOK() {
			t.Fatalf("message %d does not take the fast path", i)
		}
		fast := m.appendFast([]byte("x"))
		slow, err := m.appendChecked([]byte("x"))
		if err != nil || !bytes.Equal(fast, slow) {
			t.Errorf("message %d: fast %x, checked %x (%v)", i, fast[:min(len(fast), 64)], slow[:min(len(slow), 64)], err)
		}
	}
	// Invalid or unusual messages never take it.
	for i, m := range []*Message{
		{From: "a", To: "b", ID: []byte{1}, MIME: []byte{1}},
		{Head: Head{Tag: 1, Node: "n"}, From: "a", To: "b", ID: []byte{1}, MIME: []byte{1}},
		{Head: Head{Tag: 1}, From: "a\xff", To: "b", ID: []byte{1}, MIME: []byte{1}},
		{Head: Head{Tag: 1}, From: long(MaxAddressLen + 1), To: "b", ID: []byte{1}, MIME: []byte{1}},
		{Head: Head{Tag: 1}, From: "a", To: "b", ID: make([]byte, MaxMessageIDLen+1), MIME: []byte{1}},
		{Head: Head{Tag: 1}, From: "a", To: "b", ID: []byte{1}},
		{Head: Head{Tag: 1}, From: "a", To: "b", ID: []byte{1}, MIME: []byte{1}, Attrs: []Attr{{"alias", "x"}}},
	} {
		if m.fastOK() {
			t.Errorf("message %d takes the fast path", i)
		}
	}
}
