package client

import (
	"testing"

	"github.com/imxproject/imx/wire"
)

// TestIncomingAttrs: the attributes that rode along on a MESSAGE are kept,
// as copies, and Alias and AttrValue read them.
func TestIncomingAttrs(t *testing.T) {
	m := &wire.Message{From: "a@x.example", To: "b@x.example", ID: []byte{1}, MIME: []byte("From: a@x.example\r\n\r\nhi"),
		Attrs: []wire.Attr{{Name: "alias", Value: "Ann"}, {Name: "capabilities", Value: "html-lite"}}}
	in := parseIncoming(m)
	m.Attrs[0].Value = "changed" // the decoder reuses its records
	if in.Alias() != "Ann" {
		t.Fatalf("Alias = %q", in.Alias())
	}
	if v, ok := AttrValue(in.Attrs, "capabilities"); !ok || v != "html-lite" {
		t.Fatalf("AttrValue(capabilities) = %q %v", v, ok)
	}
	if v, ok := AttrValue(in.Attrs, "status"); ok || v != "" {
		t.Fatalf("AttrValue of a missing attribute = %q %v", v, ok)
	}
	if (Incoming{}).Alias() != "" {
		t.Fatal("an alias without attributes")
	}
}
