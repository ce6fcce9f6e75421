package discovery

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// script is a random source that returns planned numbers and records the
// bounds it was asked for.
type script struct {
	t      *testing.T
	values []uint64
	asked  []uint64
}

func (s *script) rnd(n uint64) uint64 {
	s.t.Helper()
	if len(s.values) == 0 {
		s.t.Fatalf("random number %d asked for (bound %d) beyond the script", len(s.asked)+1, n)
	}
	v := s.values[0]
	s.values = s.values[1:]
	s.asked = append(s.asked, n)
	if v >= n {
		s.t.Fatalf("scripted %d is not below the bound %d", v, n)
	}
	return v
}

// eps builds endpoints from "host/priority/weight" specs.
func eps(t *testing.T, specs ...string) []Endpoint {
	t.Helper()
	var out []Endpoint
	for _, s := range specs {
		f := strings.Split(s, "/")
		p, err1 := strconv.ParseUint(f[1], 10, 16)
		w, err2 := strconv.ParseUint(f[2], 10, 16)
		if len(f) != 3 || err1 != nil || err2 != nil {
			t.Fatalf("bad spec %q", s)
		}
		out = append(out, Endpoint{Host: f[0], Priority: uint16(p), Weight: uint16(w)})
	}
	return out
}

func hosts(eps []Endpoint) string {
	var h []string
	for _, e := range eps {
		h = append(h, e.Host)
	}
	return strings.Join(h, " ")
}

// TestOrderScripted follows RFC 2782's selection step by step with an
// injected random source.
func TestOrderScripted(t *testing.T) {
	tests := []struct {
		name   string
		in     []string
		values []uint64 // the random numbers drawn
		asked  []uint64 // the bounds they are drawn below
		want   string
	}{
		{
			name: "one entry draws nothing",
			in:   []string{"a/10/5"},
			want: "a",
		},
		{
			// Running sums 10, 30, 60: 35 selects c; then 10, 30: 0 selects a.
			name:   "weights",
			in:     []string{"a/1/10", "b/1/20", "c/1/30"},
			values: []uint64{35, 0},
			asked:  []uint64{61, 31},
			want:   "c a b",
		},
		{
			// 60 (the inclusive top) selects the last entry.
			name:   "top of the range",
			in:     []string{"a/1/10", "b/1/20", "c/1/30"},
			values: []uint64{60, 30},
			asked:  []uint64{61, 31},
			want:   "c b a",
		},
		{
			// The weight-0 entries go first, shuffled (0 swaps b before a);
			// drawing 0 selects the first of them, b; then 3 passes a (0)
			// and selects c (5).
			name:   "weight 0 first and shuffled",
			in:     []string{"a/1/0", "c/1/5", "b/1/0"},
			values: []uint64{0, 0, 3},
			asked:  []uint64{2, 6, 6},
			want:   "b c a",
		},
		{
			name:   "weight 0 loses any draw above 0",
			in:     []string{"a/1/0", "c/1/5"},
			values: []uint64{1},
			asked:  []uint64{6},
			want:   "c a",
		},
		{
			// All weights 0: a uniform shuffle, then every draw is 0.
			name:   "all weights 0",
			in:     []string{"a/1/0", "b/1/0", "c/1/0"},
			values: []uint64{0, 1, 0, 0},
			asked:  []uint64{3, 2, 1, 1},
			want:   "c b a",
		},
		{
			// Priorities in turn; the weighted draw only within each.
			name:   "priorities",
			in:     []string{"x/10/1", "y/20/1", "z/20/1", "w/30/0"},
			values: []uint64{2},
			asked:  []uint64{3},
			want:   "x z y w",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := eps(t, tt.in...)
			orig := slices.Clone(in)
			s := &script{t: t, values: tt.values}
			got := order(in, s.rnd)
			if hosts(got) != tt.want {
				t.Errorf("order = %s, want %s", hosts(got), tt.want)
			}
			if !slices.Equal(s.asked, tt.asked) {
				t.Errorf("bounds asked %v, want %v", s.asked, tt.asked)
			}
			if len(s.values) != 0 {
				t.Errorf("%d scripted numbers left", len(s.values))
			}
			if hosts(in) != hosts(orig) {
				t.Errorf("order modified its input: %s", hosts(in))
			}
		})
	}
}

// TestOrderDistribution checks the chance of each entry to come first against
// RFC 2782's: (weight+1)/(sum+1) for the entry placed first (weight 0 or the
// first listed) and weight/(sum+1) for the others.
func TestOrderDistribution(t *testing.T) {
	in := eps(t, "a/1/0", "b/1/10", "c/1/30", "d/1/60", "e/2/100")
	want := map[string]float64{"a": 1.0 / 101, "b": 10.0 / 101, "c": 30.0 / 101, "d": 60.0 / 101}
	rnd := rand.New(rand.NewPCG(1, 2)).Uint64N
	const n = 100000
	first := map[string]int{}
	for range n {
		got := order(in, rnd)
		first[got[0].Host]++
		if got[4].Host != "e" {
			t.Fatalf("priority 2 entry not last: %s", hosts(got))
		}
	}
	for h, p := range want {
		f := float64(first[h]) / n
		if f < p*0.9-0.002 || f > p*1.1+0.002 {
			t.Errorf("%s first in %.4f of the orders, want %.4f", h, f, p)
		}
	}
}

func checkOrder(t *testing.T, in, got []Endpoint) {
	t.Helper()
	key := func(e Endpoint) string {
		return e.Host + "/" + strconv.Itoa(int(e.Priority)) + "/" + strconv.Itoa(int(e.Weight))
	}
	var a, b []string
	for i := range in {
		a, b = append(a, key(in[i])), append(b, key(got[i]))
	}
	slices.Sort(a)
	slices.Sort(b)
	if len(in) != len(got) || !slices.Equal(a, b) {
		t.Fatalf("order is not a permutation: %v -> %v", a, b)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Priority < got[i-1].Priority {
			t.Fatalf("priorities out of order: %v", got)
		}
	}
}

// FuzzOrder checks that any set of records, ordered with any random numbers,
// comes out as a permutation sorted by priority, without panicking.
func FuzzOrder(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0}, uint64(1))
	f.Add([]byte{1, 0, 10, 1, 0, 20, 2, 0, 0, 2, 255, 255}, uint64(7))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		var in []Endpoint
		for i := 0; i+2 < len(data) && len(in) < MaxTargets; i += 3 {
			in = append(in, Endpoint{
				Host:     strconv.Itoa(i),
				Priority: uint16(data[i] % 4),
				Weight:   uint16(data[i+1])<<8 | uint16(data[i+2]),
			})
		}
		slices.SortStableFunc(in, func(a, b Endpoint) int { return int(a.Priority) - int(b.Priority) })
		rnd := rand.New(rand.NewPCG(seed, seed)).Uint64N
		checkOrder(t, in, order(in, rnd))
		// A faulty source (out of range) must not make it panic either.
		checkOrder(t, in, order(in, func(n uint64) uint64 { return n + seed }))
	})
}
