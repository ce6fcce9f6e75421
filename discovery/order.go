package discovery

// order returns a copy of eps, which is sorted by priority, in the order to
// try: the priorities in turn, and within each the weighted random order of
// RFC 2782. rnd returns a uniform random number in [0, n).
func order(eps []Endpoint, rnd func(n uint64) uint64) []Endpoint {
	out := make([]Endpoint, len(eps))
	copy(out, eps)
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].Priority == out[i].Priority {
			j++
		}
		weighted(out[i:j], rnd)
		i = j
	}
	return out
}

// weighted orders g, endpoints of one priority, as RFC 2782 says: put the
// weight-0 entries first (here in random order among themselves), draw a
// number from 0 to the sum of the weights inclusive, take the first entry
// whose running sum of weights reaches it, and repeat with the rest.
func weighted(g []Endpoint, rnd func(n uint64) uint64) {
	if len(g) < 2 {
		return
	}
	zeros := 0
	var sum uint64
	for k := range g {
		sum += uint64(g[k].Weight)
		if g[k].Weight == 0 {
			g[zeros], g[k] = g[k], g[zeros]
			zeros++
		}
	}
	for k := zeros - 1; k > 0; k-- { // Fisher–Yates
		m := rnd(uint64(k+1)) % uint64(k+1) // robust to a faulty rnd
		g[k], g[m] = g[m], g[k]
	}
	for start := 0; start < len(g)-1; start++ {
		n := rnd(sum + 1)
		sel := len(g) - 1
		var run uint64
		for k := start; k < len(g); k++ {
			run += uint64(g[k].Weight)
			if run >= n {
				sel = k
				break
			}
		}
		sum -= uint64(g[sel].Weight)
		// Move the selected entry to start, shifting the ones before it up
		// by one, so that the weight-0 entries stay in front.
		e := g[sel]
		copy(g[start+1:sel+1], g[start:sel])
		g[start] = e
	}
}
