package wire

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
)

// seedFrames returns every golden and bad vector, for seeding fuzz targets.
func seedFrames(f *testing.F) [][]byte {
	var out [][]byte
	for _, dir := range []string{"golden", "bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.hex"))
		for _, file := range files {
			out = append(out, readHex(f, file))
		}
	}
	return out
}

// FuzzParse checks that Parse never panics, and that whatever it accepts
// encodes again and parses back to an equal record (parse → encode → parse
// is equal). The Decoder must agree with Parse on every input.
func FuzzParse(f *testing.F) {
	for _, b := range seedFrames(f) {
		f.Add(b)
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		r1, err := Parse(b)

		// The Decoder agrees, on success and on the kind of error.
		if h, herr := ParseHeader(b); herr == nil && h.Len <= MaxFrameBody && uint64(len(b)-HeaderLen) == uint64(h.Len) {
			r2, derr := d.Decode(h, b[HeaderLen:])
			if (err == nil) != (derr == nil) {
				t.Fatalf("Parse err = %v, Decoder err = %v", err, derr)
			}
			if err != nil && !sameProblem(err, derr) {
				t.Fatalf("Parse err = %v, Decoder err = %v", err, derr)
			}
			if err == nil && !reflect.DeepEqual(normalize(r2), r1) {
				t.Fatalf("Parse = %#v, Decoder = %#v", r1, r2)
			}
			// Clone of the Decoder's record, the way handlers keep it.
			if err == nil {
				c, cerr := Clone(r2)
				if cerr != nil || !reflect.DeepEqual(normalize(c), r1) {
					t.Fatalf("Clone = %#v, %v; Parse = %#v", c, cerr, r1)
				}
			}
		}
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError: %v", err, err)
			}
			return
		}
		enc, err := r1.AppendBinary(nil)
		if err != nil {
			t.Fatalf("record %#v parsed but does not encode: %v", r1, err)
		}
		r3, err := Parse(enc)
		if err != nil {
			t.Fatalf("re-encoded %x does not parse: %v", enc, err)
		}
		if !reflect.DeepEqual(r1, r3) {
			t.Fatalf("round trip:\n first %#v\nsecond %#v", r1, r3)
		}
		if len(enc) > len(b) {
			t.Fatalf("re-encoding grew the frame from %d to %d bytes", len(b), len(enc))
		}
	})
}

func sameProblem(a, b error) bool {
	var fa, fb *FormatError
	return errors.As(a, &fa) && errors.As(b, &fb) && fa.Err == fb.Err && fa.Field == fb.Field
}

// step is what a Reader returned for one frame.
type step struct {
	rec Record
	err string
}

// readSteps reads stream to the end, skipping too-large frames and
// recording every record and error.
func readSteps(t *testing.T, r io.Reader, limit uint32) []step {
	rd := NewReader(r, limit)
	var steps []step
	for i := 0; i < 10000; i++ {
		rec, err := rd.ReadRecord()
		switch {
		case err == io.EOF:
			return steps
		case err == nil:
			steps = append(steps, step{rec: rec})
		default:
			steps = append(steps, step{err: err.Error()})
			var fe *FormatError
			if !errors.As(err, &fe) {
				return steps // the stream ended inside a frame
			}
			if errors.Is(err, ErrFrameTooLarge) {
				if err := rd.Skip(); err != nil {
					steps = append(steps, step{err: "skip: " + err.Error()})
					return steps
				}
			}
		}
	}
	t.Fatal("more than 10000 frames from a fuzz input")
	return nil
}

// FuzzReader feeds a stream to the Reader in chunks of random sizes and
// checks that it yields exactly what it yields for the stream read whole:
// framing survives a split at any byte, and bad frames neither panic nor
// desynchronise the stream.
func FuzzReader(f *testing.F) {
	frames := seedFrames(f)
	for i, b := range frames {
		f.Add(b, uint64(i))
		if i+1 < len(frames) {
			f.Add(append(append([]byte(nil), b...), frames[i+1]...), uint64(i))
		}
	}
	var all []byte
	for _, b := range frames {
		all = append(all, b...)
	}
	f.Add(all, uint64(99))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		const limit = 8192
		whole := readSteps(t, bytes.NewReader(stream), limit)
		chunked := readSteps(t, &chunkReader{b: stream, rnd: rand.New(rand.NewPCG(seed, seed>>1))}, limit)
		if len(whole) != len(chunked) {
			t.Fatalf("whole: %d steps, chunked: %d steps", len(whole), len(chunked))
		}
		for i := range whole {
			if whole[i].err != chunked[i].err || !reflect.DeepEqual(whole[i].rec, chunked[i].rec) {
				t.Fatalf("step %d: whole %+v, chunked %+v", i, whole[i], chunked[i])
			}
		}
	})
}
