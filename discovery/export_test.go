package discovery

// Waiters is the number of callers waiting for the lookup of svc and domain
// in flight, for tests of coalescing.
func Waiters(r *Resolver, svc Service, domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.flights[key{svc, domain}]; ok {
		return f.waiters
	}
	return 0
}

// Servers is the name servers r asks.
func Servers(r *Resolver) []string { return r.servers }
