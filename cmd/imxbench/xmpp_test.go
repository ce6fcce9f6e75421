package main

import (
	"bytes"
	"strings"
	"testing"
)

// A receiver's stream as Prosody 0.12 writes it: its own presence, a
// whitespace keepalive, and messages, one split over two reads.
const prosodyStream = `<presence from='r0@beta.bench/imxbench' to='r0@beta.bench/imxbench'/> ` +
	`<message id='L3.17' type='chat' to='r0@beta.bench/imxbench' from='s3@alpha.bench/imxbench'><body>1 1764160000000000000 xxxx</body></message>` +
	`<message from="s0@alpha.bench/imxbench" id="P0.2" type="chat"><body>2 5 x</body></message>`

func TestScanMessages(t *testing.T) {
	type msg struct{ id, body string }
	want := []msg{{"L3.17", "1 1764160000000000000 xxxx"}, {"P0.2", "2 5 x"}}
	// Every split of the stream into two reads gives the same messages.
	for cut := 0; cut <= len(prosodyStream); cut++ {
		var got []msg
		var buf []byte
		for _, part := range []string{prosodyStream[:cut], prosodyStream[cut:]} {
			buf = append(buf, part...)
			done := scanMessages(buf, func(st []byte) {
				id, body, ok := parseXMPPMessage(st)
				if !ok {
					t.Fatalf("cut %d: stanza %q does not parse", cut, st)
				}
				got = append(got, msg{string(id), string(body)})
			})
			buf = buf[:copy(buf, buf[done:])]
		}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("cut %d: got %v, want %v", cut, got, want)
		}
		if len(buf) >= len("<message") {
			t.Errorf("cut %d: %q left over", cut, buf)
		}
	}
}

func TestParseXMPPMessage(t *testing.T) {
	for _, tc := range []struct {
		in       string
		id, body string
		ok       bool
	}{
		{`<message id='a'><body>b</body></message>`, "a", "b", true},
		{`<message to='x' id="a.1"><body></body></message>`, "a.1", "", true},
		{`<message><body>b</body></message>`, "", "b", false},                  // no id
		{`<message id='a'></message>`, "a", "", false},                         // no body
		{`<message id='a'><body>b</message>`, "a", "", false},                  // no </body>
		{`<message id='a><body>b</body></message>`, "", "b", false},            // unterminated id
		{`<message xid='a'><body>b</body></message>`, "", "b", false},          // not id
		{`<message><subject id='a'/><body>b</body></message>`, "", "b", false}, // id of another element
	} {
		id, body, ok := parseXMPPMessage([]byte(tc.in))
		if string(id) != tc.id || string(body) != tc.body || ok != tc.ok {
			t.Errorf("%s: got %q %q %v, want %q %q %v", tc.in, id, body, ok, tc.id, tc.body, tc.ok)
		}
	}
}

func TestXMPPIsError(t *testing.T) {
	for in, want := range map[string]bool{
		`<message id='L0.1' type='error' from='r0@beta.bench'><body>x</body><error type='cancel'/></message>`: true,
		`<message type="error"><body>x</body></message>`:                                                      true,
		`<message id='L0.1' type='chat'><body>type='error'</body></message>`:                                  false,
		`<message id='L0.1' type='chat'><error type='error'/></message>`:                                      false,
	} {
		if got := xmppIsError([]byte(in)); got != want {
			t.Errorf("%s: %v, want %v", in, got, want)
		}
	}
}

func FuzzScanMessages(f *testing.F) {
	f.Add([]byte(prosodyStream))
	f.Add([]byte("<message<message></message>"))
	f.Add([]byte("</message><message"))
	f.Fuzz(func(t *testing.T, b []byte) {
		prev := 0
		done := scanMessages(b, func(st []byte) {
			if !bytes.HasPrefix(st, xmppMessageOpen) || !bytes.HasSuffix(st, xmppMessageClose) {
				t.Fatalf("stanza %q", st)
			}
			// Stanzas come in order and do not overlap.
			at := bytes.Index(b[prev:], st)
			if at < 0 {
				t.Fatalf("stanza %q not after byte %d", st, prev)
			}
			prev += at + len(st)
			id, body, ok := parseXMPPMessage(st)
			if ok && (bytes.Contains(id, []byte("'")) || strings.Contains(string(body), "</body>")) {
				t.Fatalf("id %q body %q", id, body)
			}
		})
		if done < prev || done > len(b) {
			t.Fatalf("done %d, after the last stanza at %d, of %d bytes", done, prev, len(b))
		}
		// What is left holds no complete message.
		if rest := b[done:]; bytes.Contains(rest, xmppMessageClose) && bytes.Contains(rest, xmppMessageOpen) &&
			bytes.Index(rest, xmppMessageOpen) < bytes.LastIndex(rest, xmppMessageClose) {
			t.Fatalf("%q left with a complete message in it", rest)
		}
	})
}
