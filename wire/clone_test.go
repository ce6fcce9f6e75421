package wire

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// fill sets every field of the struct v points to, recursively, so that a
// field added to a record is covered without changing the test.
func fill(v reflect.Value, name string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(strings.ToLower(name) + ".x") // a valid attribute name too
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Type() == reflect.TypeFor[Flags]() {
			return // the flags of a request are checked
		}
		if v.Type() == reflect.TypeFor[Presence]() {
			v.SetUint(uint64(PresenceOnline))
			return
		}
		v.SetUint(7)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(name + " bytes"))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), fmt.Sprint(name, i))
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), v.Type().Field(i).Name)
		}
	}
}

// TestCloneMatchesParse: Clone copies every field of the records it
// copies by hand, as Clone does, and shares no bytes or slices with
// the original (which a decoder reuses).
func TestCloneMatchesParse(t *testing.T) {
	for _, rec := range []Record{new(Message), new(Notify), new(Subscribe), new(Unsubscribe), new(GetAttrs), new(Send), new(Result), new(DBToken)} {
		fill(reflect.ValueOf(rec).Elem(), "f")
		if r, ok := rec.(*Result); ok {
			r.Flags = FlagResponse // as every decoded RESULT has it
		}
		want, err := cloneByParse(rec)
		if err != nil {
			t.Fatalf("%s: Clone: %v", rec.Type(), err)
		}
		got, err := Clone(rec)
		if err != nil {
			t.Fatalf("%s: %v", rec.Type(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\nclone      %#v\nClone %#v", rec.Type(), got, want)
		}
		// Scribble over the original's bytes and slices: the copy keeps
		// its values.
		scribble(reflect.ValueOf(rec).Elem())
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the copy shares memory with the original: %#v", rec.Type(), got)
		}
	}
	m := &Message{Head: Head{Tag: 1}, From: "a@alpha.example", To: "b@beta.example", ID: []byte("id"), MIME: make([]byte, 200)}
	if n := testing.AllocsPerRun(100, func() { _, _ = Clone(m) }); n != 2 {
		t.Errorf("clone of a MESSAGE: %v allocations, want 2", n)
	}
}

func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			for i := range v.Len() {
				v.Index(i).SetUint(0)
			}
			return
		}
		for i := range v.Len() {
			v.Index(i).Set(reflect.Zero(v.Type().Elem()))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			scribble(v.Field(i))
		}
	}
}
