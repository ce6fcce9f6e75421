package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/client"
	"github.com/imxproject/imx/internal/link"
	"github.com/imxproject/imx/store"
	"github.com/imxproject/imx/store/sqlite"
	"github.com/imxproject/imx/wire"
)

// The fanout scenario. Two imxd processes: one serves the presentity's
// domain (p.bench), the other the D watcher domains (w0.bench …). The
// users, their session tokens and the presentity's approvals of every
// watcher are written into the two stores before the processes start
// (10,000 argon2id hashes through the admin API would take minutes); the
// rest goes over the network: every watcher logs in (resumes its token) on
// a WebSocket of its own, adds the presentity as a contact (CONTACT-ADD,
// hence a SUBSCRIBE over the server connection, granted at once), and
// waits. The presentity then changes presence (PRESENCE-SET) several
// times, away and online in turn, and each change is timed from the send
// of PRESENCE-SET to the arrival of its NOTIFY at each watcher session.
//
// Then, unless -renewals is 0, the steady cost of renewals: a second pair
// of imxd processes (domains rp.bench, rw0.bench …) set up the same way
// with a short subscription_timeout, whose SUBSCRIBE frames between the
// servers are counted from /metrics over whole renewal periods.

type fanoutOpts struct {
	watchers, domains int
	online            int
	rounds            int
	gap               time.Duration
	wait              time.Duration
	conc              int
	renewals          int
	subTimeout        time.Duration
	profile           string
	driver            string
}

func fanoutFlags(fs *flag.FlagSet) func(context.Context, *common, *world) (*report, error) {
	var o fanoutOpts
	fs.IntVar(&o.watchers, "watchers", 10000, "watchers (users, each with one session)")
	fs.IntVar(&o.domains, "domains", 100, "watcher domains, all served by one imxd; the watchers are spread evenly")
	fs.IntVar(&o.online, "online", 0, "watchers whose session stays open for the measured changes (0: all); the others log out after the setup, and their subscriptions stay (their NOTIFYs are still sent and read, and pushed to nobody)")
	fs.IntVar(&o.rounds, "rounds", 5, "measured presence changes (away and online in turn), after one unmeasured")
	fs.DurationVar(&o.gap, "gap", time.Second, "pause after each change has reached every watcher")
	fs.DurationVar(&o.wait, "wait", 10*time.Second, "how long to wait for one change to reach every watcher")
	fs.IntVar(&o.conc, "concurrency", 64, "sessions logged in (and contacts added) at once during the setup")
	fs.IntVar(&o.renewals, "renewals", 2, "renewals of each subscription to measure the steady cost of renewals over (0: skip that measurement)")
	fs.DurationVar(&o.subTimeout, "subscription-timeout", time.Minute, "subscription_timeout of the domains of the renewal measurement (1m is the least imxd accepts)")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of both imxd processes (/debug/pprof) and of imxbench over the measured changes into this directory, and, with -renewals, of the renewals' pair over the first subscription timeout of its window")
	fs.StringVar(&o.driver, "driver", "frames", "how the watchers' sessions are driven: frames (read frame by frame by imxbench itself, as the floor reads) or client (the Go client package, as the imx CLI)")
	return func(ctx context.Context, c *common, w *world) (*report, error) {
		if o.online == 0 || o.online > o.watchers {
			o.online = o.watchers
		}
		if o.watchers < 1 || o.domains < 1 || o.domains > o.watchers || o.rounds < 1 || o.conc < 1 || o.wait <= 0 || o.gap < 0 || o.renewals < 0 || o.subTimeout < time.Minute {
			return nil, errors.New("need -watchers ≥ -domains ≥ 1, -rounds ≥ 1, -concurrency ≥ 1, -wait > 0, -gap ≥ 0, -renewals ≥ 0, -subscription-timeout ≥ 1m")
		}
		if o.driver != "frames" && o.driver != "client" {
			return nil, fmt.Errorf("-driver is frames or client, not %q", o.driver)
		}
		return runFanout(ctx, c, w, &o)
	}
}

// fanWorld is one presentity and its watchers, logged in.
type fanWorld struct {
	o        *fanoutOpts
	pres     *imxdProc // the presentity's imxd
	wat      *imxdProc // the watchers' imxd
	presence string    // the presentity's address
	pc       *client.Client
	watchers []fanWatcher
	evWG     sync.WaitGroup
	writers  *link.WriterPool // the frames watchers' writers

	initial     atomic.Int64  // watchers that got the presence at CONTACT-ADD
	seenInitial []atomic.Bool // per watcher: counted in initial

	// Per change k: its start (unix ns), the arrival of its NOTIFY at each
	// watcher (ns after the start; 0: not yet), the watchers still waiting,
	// and a channel closed when none is.
	round     atomic.Int64
	t0        []atomic.Int64
	arrival   [][]atomic.Int64
	remaining []atomic.Int64
	all       []chan struct{}
	late      atomic.Int64 // NOTIFYs of an earlier change arriving late, or repeated
}

const roundStatus = "imxbench change "

// watcherAddr is the address of watcher i: u<i>@<prefix>w<i mod D>.bench.
func watcherAddr(prefix string, i, domains int) addr.Address {
	return addr.MustParse(fmt.Sprintf("u%d@%sw%d.bench", i, prefix, i%domains))
}

// openStore opens the store imxd will use, with cheap password hashes:
// nobody logs in with a password here (the sessions resume tokens), and the
// hash's parameters are only checked at a password login.
func openStore(ctx context.Context, path string) (*sqlite.Store, error) {
	return sqlite.Open(ctx, path, sqlite.Options{Password: store.PasswordParams{Memory: 64, Time: 1, Threads: 1}})
}

// newSession creates account a and a session token for it.
func newSession(ctx context.Context, st *sqlite.Store, a addr.Address) ([]byte, error) {
	if err := st.CreateAccount(ctx, a, benchPassword); err != nil {
		return nil, err
	}
	now := time.Now()
	tok, _, err := st.CreateSession(ctx, store.Session{User: a, Client: "imxbench", Created: now, Expires: now.Add(24 * time.Hour)})
	return tok, err
}

// setupFanout starts the two imxd processes of one fan-out world (domain
// names prefixed by prefix), with extra in every [[domain]] table, and
// logs everybody in.
func setupFanout(ctx context.Context, w *world, o *fanoutOpts, prefix, extra string, total int) (*fanWorld, error) {
	f := &fanWorld{o: o}
	presAddr := addr.MustParse("p@" + prefix + "p.bench")
	f.presence = presAddr.String()
	watchers := make([]addr.Address, o.watchers)
	for i := range watchers {
		watchers[i] = watcherAddr(prefix, i, o.domains)
	}
	var presToken []byte
	var err error
	f.pres, err = w.startSpec(ctx, imxdSpec{
		domains: []string{presAddr.Domain()}, ip: "127.0.0.2", extra: extra,
		prepare: func(ctx context.Context, path string) error {
			st, err := openStore(ctx, path)
			if err != nil {
				return err
			}
			defer st.Close()
			if presToken, err = newSession(ctx, st, presAddr); err != nil {
				return err
			}
			// Pre-approval: the presentity has approved every watcher.
			now := time.Now()
			return parallel(ctx, len(watchers), 8, func(ctx context.Context, i int) error {
				return st.SetApproval(ctx, store.Approval{Presentity: presAddr, Watcher: watchers[i], State: store.ApprovalApproved, Asked: now})
			})
		},
	})
	if err != nil {
		return nil, err
	}
	domains := make([]string, o.domains)
	for i := range domains {
		domains[i] = fmt.Sprintf("%sw%d.bench", prefix, i)
	}
	tokens := make([][]byte, len(watchers))
	f.wat, err = w.startSpec(ctx, imxdSpec{
		domains: domains, ip: "127.0.0.3", extra: extra,
		top: fmt.Sprintf("[clients]\nmax_connections = %d\n", o.watchers+64),
		prepare: func(ctx context.Context, path string) error {
			st, err := openStore(ctx, path)
			if err != nil {
				return err
			}
			defer st.Close()
			return parallel(ctx, len(watchers), 8, func(ctx context.Context, i int) (err error) {
				tokens[i], err = newSession(ctx, st, watchers[i])
				return err
			})
		},
	})
	if err != nil {
		return nil, err
	}

	f.seenInitial = make([]atomic.Bool, o.watchers)
	f.t0 = make([]atomic.Int64, total)
	f.remaining = make([]atomic.Int64, total)
	f.all = make([]chan struct{}, total)
	f.arrival = make([][]atomic.Int64, total)
	for k := range total {
		f.remaining[k].Store(int64(o.online))
		f.all[k] = make(chan struct{})
		f.arrival[k] = make([]atomic.Int64, o.watchers)
	}
	f.round.Store(-1)

	resume := func(ctx context.Context, p *imxdProc, a addr.Address, tok []byte) (*client.Client, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cl, err := client.Dial(ctx, "ws://"+p.client+"/imx", nil)
		if err != nil {
			return nil, err
		}
		if _, err := cl.Resume(ctx, a.String(), tok); err != nil {
			cl.Close()
			return nil, err
		}
		return cl, nil
	}
	if f.pc, err = resume(ctx, f.pres, presAddr, presToken); err != nil {
		return nil, fmt.Errorf("presentity: %w", err)
	}
	f.watchers = make([]fanWatcher, len(watchers))
	if o.driver == "frames" {
		f.writers = link.NewWriterPool(0)
	}
	var refused atomic.Int64
	var firstRefusal atomic.Value
	err = parallel(ctx, len(watchers), o.conc, func(ctx context.Context, i int) error {
		var cl fanWatcher
		if o.driver == "frames" {
			rs, err := dialRaw(ctx, f.wat, &wire.Login{User: watchers[i].String(), Session: tokens[i], Client: "imxbench"},
				link.Config{Writers: f.writers}, func(lc *link.Conn, rec wire.Record) { f.rawEvent(i, lc, rec) })
			if err != nil {
				return fmt.Errorf("watcher %d: %w", i, err)
			}
			cl = rawWatcher{rs}
		} else {
			c, err := resume(ctx, f.wat, watchers[i], tokens[i])
			if err != nil {
				return fmt.Errorf("watcher %d: %w", i, err)
			}
			f.evWG.Go(func() { f.events(i, c) })
			cl = clientWatcher{c}
		}
		f.watchers[i] = cl
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		res, err := cl.addContact(actx, f.presence)
		if err != nil {
			return fmt.Errorf("watcher %d: %w", i, err)
		}
		if res.Code != wire.StatusOK {
			refused.Add(1)
			firstRefusal.CompareAndSwap(nil, res.Code.String()+" "+res.Text)
		}
		return nil
	})
	if err != nil {
		return f, err
	}
	if n := refused.Load(); n > 0 {
		return f, fmt.Errorf("%d CONTACT-ADDs not answered ok (first: %v)", n, firstRefusal.Load())
	}
	// Every CONTACT-ADD answered ok has pushed the presentity's presence
	// (online) to its watcher before the answer.
	deadline := time.Now().Add(30 * time.Second)
	for f.initial.Load() < int64(o.watchers) {
		if time.Now().After(deadline) {
			return f, fmt.Errorf("only %d of %d watchers saw the presentity online after adding it", f.initial.Load(), o.watchers)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return f, err
		}
	}
	return f, nil
}

// events reads the presence events of watcher i's client.
func (f *fanWorld) events(i int, cl *client.Client) {
	for {
		select {
		case ev := <-cl.Events():
			if n, ok := ev.(*wire.Notify); ok {
				f.notified(i, n, time.Now().UnixNano())
			}
		case <-cl.Done():
			return
		}
	}
}

// rawEvent handles a record the server sent to watcher i's frames session,
// on its reader goroutine: a NOTIFY is timed there, without a copy or a
// hand-over.
func (f *fanWorld) rawEvent(i int, lc *link.Conn, rec wire.Record) {
	now := time.Now().UnixNano()
	if n, ok := rec.(*wire.Notify); ok {
		f.notified(i, n, now)
	}
	if tag := rec.FrameHead().Tag; tag != 0 {
		lc.TrySend(&wire.Result{Head: wire.Head{Tag: tag}, Code: wire.StatusOK})
	}
}

// notified counts watcher i's NOTIFY n, which arrived at now (Unix ns).
func (f *fanWorld) notified(i int, n *wire.Notify, now int64) {
	if n.Presentity != f.presence {
		return
	}
	k, isRound := strings.CutPrefix(n.Status, roundStatus)
	if !isRound {
		if !f.seenInitial[i].Load() && n.Presence == wire.PresenceOnline {
			f.seenInitial[i].Store(true)
			f.initial.Add(1)
		}
		return
	}
	r, err := strconv.Atoi(k)
	if err != nil || r < 0 || r >= len(f.t0) || int64(r) != f.round.Load() {
		f.late.Add(1)
		return
	}
	d := max(now-f.t0[r].Load(), 1)
	if !f.arrival[r][i].CompareAndSwap(0, d) {
		f.late.Add(1)
		return
	}
	if f.remaining[r].Add(-1) == 0 {
		close(f.all[r])
	}
}

// closeWatchers closes the watchers that are not nil, conc at a time.
func closeWatchers(ws []fanWatcher, conc int) {
	closeEach(ws, conc, fanWatcher.close)
}

// A fanWatcher is a watcher's session.
type fanWatcher interface {
	addContact(ctx context.Context, presentity string) (*wire.Result, error)
	close()
}

type clientWatcher struct{ *client.Client }

func (w clientWatcher) addContact(ctx context.Context, p string) (*wire.Result, error) {
	return w.AddContact(ctx, p, "")
}
func (w clientWatcher) close() { w.Close() }

type rawWatcher struct{ *rawSession }

func (w rawWatcher) addContact(ctx context.Context, p string) (*wire.Result, error) {
	r := &wire.ContactAdd{Address: p}
	rec, err := w.request(ctx, r, &r.Head)
	if err != nil {
		return nil, err
	}
	res, ok := rec.(*wire.Result)
	if !ok {
		return nil, fmt.Errorf("CONTACT-ADD answered with %s", rec.Type())
	}
	return res, nil
}

// close logs everybody out.
func (f *fanWorld) close(conc int) {
	closeWatchers(f.watchers, conc)
	closeClients([]*client.Client{f.pc}, conc)
	f.evWG.Wait()
	if f.writers != nil {
		f.writers.Close()
		f.writers.Wait()
	}
}

// change is the outcome of one presence change.
type change struct {
	ack      time.Duration   // PRESENCE-SET → its RESULT
	arrivals []time.Duration // of the watchers reached
	missing  int             // watchers not reached within -wait
	notifyS2S, notifyC2S,
	resultS2S float64 // frames counted in /metrics during the change
}

// change makes the presentity's k-th presence change and waits for it to
// reach every watcher (or -wait to pass), then for -gap.
func (f *fanWorld) change(ctx context.Context, w *world, k int) (change, error) {
	var ch change
	p := wire.PresenceAway
	if k%2 == 1 {
		p = wire.PresenceOnline
	}
	before, err := framesOf(ctx, w, f.pres, f.wat)
	if err != nil {
		return ch, err
	}
	f.round.Store(int64(k))
	t0 := time.Now()
	f.t0[k].Store(t0.UnixNano())
	res, err := f.pc.SetPresence(ctx, p, roundStatus+strconv.Itoa(k))
	if err != nil {
		return ch, err
	}
	ch.ack = time.Since(t0)
	if res.Code != wire.StatusOK {
		return ch, fmt.Errorf("PRESENCE-SET: %s %s", res.Code, res.Text)
	}
	t := time.NewTimer(f.o.wait)
	select {
	case <-f.all[k]:
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return ch, ctx.Err()
	}
	t.Stop()
	if err := sleepCtx(ctx, f.o.gap); err != nil {
		return ch, err
	}
	after, err := framesOf(ctx, w, f.pres, f.wat)
	if err != nil {
		return ch, err
	}
	for i := range f.o.online {
		if d := f.arrival[k][i].Load(); d > 0 {
			ch.arrivals = append(ch.arrivals, time.Duration(d))
		} else {
			ch.missing++
		}
	}
	ch.notifyS2S = after[0].get("server", "out", "NOTIFY") - before[0].get("server", "out", "NOTIFY")
	ch.resultS2S = after[1].get("server", "out", "RESULT") - before[1].get("server", "out", "RESULT")
	ch.notifyC2S = after[1].get("client", "out", "NOTIFY") - before[1].get("client", "out", "NOTIFY")
	return ch, nil
}

func runFanout(ctx context.Context, c *common, w *world, o *fanoutOpts) (*report, error) {
	total := o.rounds + 1 // the first is a warm-up
	setupStart := time.Now()
	f, err := setupFanout(ctx, w, o, "", "", total)
	if f != nil {
		defer f.close(o.conc)
	}
	if err != nil {
		return nil, err
	}
	setup := time.Since(setupStart)
	r := &report{scenario: "fanout"}
	r.param("watchers", "watchers (one session each)", o.watchers)
	r.param("domains", "watcher domains (one imxd)", o.domains)
	r.param("rounds", "measured presence changes", o.rounds)
	r.param("driver", "watchers' sessions driven by", o.driver)
	r.param("warmup_s", "pause after the setup", c.warmup.Seconds())
	r.figure("setup_s", "setup: stores, 2 imxd, logins, CONTACT-ADDs", round(setup.Seconds(), 2), fmt.Sprintf("%.1f s", setup.Seconds()))
	if o.online < o.watchers {
		// The watchers i ≥ online log out: online ≥ domains keeps one
		// session or more in every domain.
		var wg sync.WaitGroup
		sem := make(chan struct{}, o.conc)
		for i := o.online; i < o.watchers; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				f.watchers[i].close()
				f.watchers[i] = nil
				<-sem
			})
		}
		wg.Wait()
	}
	r.param("online", "watchers with a session open during the changes", o.online)
	if err := sleepCtx(ctx, c.warmup); err != nil {
		return nil, err
	}
	warm, err := f.change(ctx, w, 0)
	if err != nil {
		return nil, err
	}

	var stopProfiles func() error
	if o.profile != "" {
		secs := int(math.Ceil(float64(o.rounds) * (o.gap.Seconds() + 0.3)))
		if stopProfiles, err = startProfiles(ctx, w, o.profile, "imxbench.cpu.pprof", max(secs, 1), f.pres, f.wat); err != nil {
			return nil, err
		}
	}
	cpu := w.startCPU()
	var changes []change
	for k := 1; k < total; k++ {
		ch, err := f.change(ctx, w, k)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch)
	}
	cpu.stop(r)
	if stopProfiles != nil {
		if err := stopProfiles(); err != nil {
			r.notes = append(r.notes, "profiles: "+err.Error())
		} else {
			r.notes = append(r.notes, "CPU profiles written to "+o.profile)
		}
	}

	ms := func(d time.Duration) float64 { return round(float64(d.Microseconds())/1000, 3) }
	var (
		pooled    latencies
		allTimes  []float64
		allText   []string
		acks      latencies
		missing   int
		notifyS2S []float64
		notifyC2S []float64
	)
	for _, ch := range changes {
		pooled = append(pooled, ch.arrivals...)
		acks = append(acks, ch.ack)
		missing += ch.missing
		notifyS2S = append(notifyS2S, ch.notifyS2S)
		notifyC2S = append(notifyC2S, ch.notifyC2S)
		if ch.missing > 0 {
			allTimes = append(allTimes, -1)
			allText = append(allText, fmt.Sprintf("(%d missing)", ch.missing))
			continue
		}
		m := ms(slices.Max(ch.arrivals))
		allTimes = append(allTimes, m)
		allText = append(allText, fmt.Sprintf("%.1f", m))
	}
	sorted := slices.Clone(allTimes)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	if slices.Contains(sorted, -1) {
		median = -1
	}
	r.figure("all_notified_ms", "all watchers notified, per change (ms)", allTimes, strings.Join(allText, ", "))
	r.figure("all_notified_median_ms", "all watchers notified, median of the changes", median, fmt.Sprintf("%.1f ms (target ≤ 100 ms)", median))
	pooled.add(r, "arrival", "NOTIFY arrival at a watcher, all changes")
	acks.add(r, "ack", "PRESENCE-SET → RESULT")
	warmAll := -1.0
	if warm.missing == 0 {
		warmAll = ms(slices.Max(warm.arrivals))
	}
	r.figure("warmup_all_notified_ms", "unmeasured first change: all notified", warmAll, fmt.Sprintf("%.1f ms", warmAll))
	perDomain := (o.watchers + o.domains - 1) / o.domains
	expect := o.domains * ((perDomain + 999) / 1000)
	r.figure("notify_s2s_per_change", "NOTIFY frames between the servers, per change", notifyS2S, fmt.Sprintf("%v (one per domain and 1,000 watchers: %d)", notifyS2S, expect))
	r.figure("notify_c2s_per_change", "NOTIFY frames to watcher sessions, per change", notifyC2S, fmt.Sprint(notifyC2S))
	if o.online < o.watchers {
		r.notes = append(r.notes, fmt.Sprintf("only %d of the %d watchers had a session open during the changes: the arrival and all-notified figures are theirs. The watchers' imxd still handled every watcher of each NOTIFY, and pushed to the %d sessions only.", o.online, o.watchers, o.online))
	}
	r.figure("missing", "watchers not notified within -wait", missing, "")
	r.figure("late", "NOTIFYs of an earlier change, or repeated", f.late.Load(), "")
	r.notes = append(r.notes,
		"arrival: from the send of PRESENCE-SET by the presentity's client to the NOTIFY read by each watcher's session in imxbench (decoded on its reader with -driver frames, taken from the client's event channel with -driver client): client → presentity's imxd → server connection → watchers' imxd → client. all notified: the latest arrival of a change.",
		"CPU figures: over the measured changes, including the -gap pauses after each.")

	if o.renewals > 0 {
		f.close(o.conc)
		f = nil
		w.stopAll()
		if err := measureRenewals(ctx, w, o, r); err != nil {
			return nil, fmt.Errorf("renewals: %w", err)
		}
	}
	return r, nil
}

// measureRenewals sets up a second world with a short subscription timeout
// and counts the frames of whole renewal periods, once renewals are steady.
func measureRenewals(ctx context.Context, w *world, o *fanoutOpts, r *report) error {
	extra := fmt.Sprintf("subscription_timeout = %q\n", o.subTimeout.String())
	f, err := setupFanout(ctx, w, o, "r", extra, 0)
	if f != nil {
		defer f.close(o.conc)
	}
	if err != nil {
		return err
	}
	subscribes := func() (float64, error) {
		m, err := framesOf(ctx, w, f.pres)
		if err != nil {
			return 0, err
		}
		return m[0].get("server", "in", "SUBSCRIBE"), nil
	}
	// The setup made every subscription within half a minute, so their
	// renewals come in waves, one renewal period apart (80% of the
	// timeout less a jitter, at the next sweep: presence.Config.RenewEvery,
	// at most a tenth of the timeout), and the jitter spreads them only
	// slowly. So the window runs between the same point of two waves: from
	// the moment 95% of the subscriptions have been renewed once to the
	// moment 95% have been renewed 1 + -renewals times. It then holds
	// -renewals renewals of each subscription, whatever the sweeps' rhythm.
	//
	// Each look scrapes the presentity's /metrics, which costs that imxd
	// a few ms of CPU: at 10 per second it was a quarter of its CPU in
	// the window. Once a second moves the window's end by up to a second,
	// and both ends' counts are read at the window's ends.
	const poll = time.Second
	base, err := subscribes()
	if err != nil {
		return err
	}
	// renewed waits until the subscriptions have been renewed k times
	// (95% of the last round).
	renewed := func(k int) error {
		want := (float64(k) - 0.05) * float64(o.watchers)
		wait := time.Duration(k+2)*o.subTimeout + 2*time.Minute
		deadline := time.Now().Add(wait)
		for {
			if err := sleepCtx(ctx, poll); err != nil {
				return err
			}
			n, err := subscribes()
			if err != nil {
				return err
			}
			if n-base >= want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%v SUBSCRIBEs after %v, not %.0f: the %d subscriptions were not renewed %d times", n-base, wait, want, o.watchers, k)
			}
		}
	}
	if err := renewed(1); err != nil {
		return err
	}
	before, err := framesOf(ctx, w, f.pres, f.wat)
	if err != nil {
		return err
	}
	first := time.Now()
	cpu := w.startCPU()
	var stopProfiles func() error
	if o.profile != "" {
		secs := max(int(o.subTimeout.Seconds()), 1)
		if stopProfiles, err = startProfiles(ctx, w, o.profile, "imxbench.renew.cpu.pprof", secs, f.pres, f.wat); err != nil {
			return err
		}
	}
	if err := renewed(1 + o.renewals); err != nil {
		if stopProfiles != nil {
			_ = stopProfiles()
		}
		return err
	}
	after, err := framesOf(ctx, w, f.pres, f.wat)
	if err != nil {
		return err
	}
	rc := &report{}
	cpu.stop(rc)
	if stopProfiles != nil {
		if err := stopProfiles(); err != nil {
			r.notes = append(r.notes, "renewal profiles: "+err.Error())
		} else {
			r.notes = append(r.notes, fmt.Sprintf("renewal CPU profiles (the window's first %v) written to %s: %s.cpu.pprof, %s.cpu.pprof, imxbench.renew.cpu.pprof", o.subTimeout, o.profile, f.pres.domain, f.wat.domain))
		}
	}
	window := time.Since(first).Seconds()
	subs := after[0].get("server", "in", "SUBSCRIBE") - before[0].get("server", "in", "SUBSCRIBE")
	if subs == 0 {
		return fmt.Errorf("no renewal in %.0f s", window)
	}
	// Frames on the presentity's side of the server connections, both
	// directions, all types (SUBSCRIBE in, RESULT out, PING/PONG), over
	// the window.
	frames := after[0].sum("server") - before[0].sum("server")
	results := after[0].get("server", "out", "RESULT") - before[0].get("server", "out", "RESULT")
	per10k := 10000 / float64(o.watchers)
	rate := frames / window * per10k
	period := float64(o.watchers) * window / subs // seconds between renewals of one subscription
	// At the default timeout (30 min) a subscription is renewed at 80% of
	// it less a jitter of 0–5% (mean 77.5%, 1,395 s), at the first sweep
	// (every minute) after that: 30 s later on average, so every 1,425 s.
	const defaultPeriod = 0.775*1800 + 30
	framesPerRenewal := frames / subs
	scaled := framesPerRenewal * 10000 / defaultPeriod
	r.param("renew_subscription_timeout_s", "renewals: subscription_timeout", o.subTimeout.Seconds())
	r.figure("renew_window_s", "renewals: window (whole renewal periods)", round(window, 2), fmt.Sprintf("%.1f s, %d renewals of each subscription", window, o.renewals))
	r.figure("renew_subscribes", "renewals: SUBSCRIBE / RESULT frames in the window", subs, fmt.Sprintf("%.0f / %.0f", subs, results))
	r.figure("renew_period_s", "renewals: seconds between renewals of one subscription", round(period, 1), fmt.Sprintf("%.1f s", period))
	r.figure("renew_frames_per_renewal", "renewals: server frames per renewal (all types, both ways)", round(framesPerRenewal, 3), "")
	r.figure("renew_frames_per_s_10k", "renewals: server frames/s per 10,000 subscriptions, measured", round(rate, 1), fmt.Sprintf("%.1f frames/s at subscription_timeout %v", rate, o.subTimeout))
	r.figure("renew_frames_per_s_10k_default", "renewals: the same at the default 30 min (scaled)", round(scaled, 2), fmt.Sprintf("%.1f frames/s (%.3f frames per renewal × 10,000 / %.0f s)", scaled, framesPerRenewal, defaultPeriod))
	for _, fl := range rc.figures {
		switch fl.key {
		case "bench_cpu_s":
			r.figure("renew_bench_cpu_s", "renewals: imxbench CPU over the window", fl.value, fl.text)
		case "imxd_cpu_s":
			r.figures = append(r.figures, field{key: "renew_imxd_cpu_s", value: fl.value})
			cpuMap := fl.value.(map[string]float64)
			var parts []string
			for _, d := range []string{f.pres.domain, f.wat.domain} {
				s := cpuMap[d]
				parts = append(parts, fmt.Sprintf("%s %.2f s (%.0f µs per renewal)", d, s, s/subs*1e6))
			}
			r.figures = append(r.figures, field{label: "renewals: imxd CPU over the window", text: strings.Join(parts, ", ")})
		}
	}
	r.notes = append(r.notes, fmt.Sprintf("renewals: a second pair of imxd processes, set up the same way with subscription_timeout = %v on every domain; the window runs from the moment 95%% of the subscriptions have been renewed once to the moment 95%% have been renewed %d times. Frames are those of the presentity's server connections, both ways. Scaled to 30 min: frames per renewal × 10,000 / 1,425 s (renewal at 80%% of the timeout less a 0–5%% jitter, at the next one-minute sweep).", o.subTimeout, 1+o.renewals))
	return nil
}

// frames are the values of imx_frames_total, by "kind direction type".
type frames map[string]float64

func (m frames) get(kind, dir, typ string) float64 { return m[kind+" "+dir+" "+typ] }

// sum adds up the frames of one kind, both directions, all types.
func (m frames) sum(kind string) float64 {
	t := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, kind+" ") {
			t += v
		}
	}
	return t
}

// framesOf scrapes /metrics of each process.
func framesOf(ctx context.Context, w *world, procs ...*imxdProc) ([]frames, error) {
	out := make([]frames, len(procs))
	for i, p := range procs {
		m, err := scrapeFrames(ctx, w, p)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

func scrapeFrames(ctx context.Context, w *world, p *imxdProc) (frames, error) {
	mfs, err := scrape(ctx, w, p)
	if err != nil {
		return nil, err
	}
	m := frames{}
	for _, x := range mfs["imx_frames_total"].GetMetric() {
		m[label(x, "kind")+" "+label(x, "direction")+" "+label(x, "type")] += value(x)
	}
	return m, nil
}

// startProfiles asks each imxd for a CPU profile of secs seconds
// (/debug/pprof/profile) and profiles imxbench itself, writing
// DIR/DOMAIN.cpu.pprof and DIR/SELF (imxbench's). The returned function
// waits for the imxd profiles and stops imxbench's.
func startProfiles(ctx context.Context, w *world, dir, self string, secs int, procs ...*imxdProc) (func() error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	own, err := os.Create(filepath.Join(dir, self))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(own); err != nil {
		own.Close()
		return nil, err
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() {
			errs[i] = func() error {
				url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.admin, secs)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				cl := &http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}
				resp, err := cl.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("%s: %s (is admin.pprof on?)", url, resp.Status)
				}
				out, err := os.Create(filepath.Join(dir, p.domain+".cpu.pprof"))
				if err != nil {
					return err
				}
				if _, err := io.Copy(out, resp.Body); err != nil {
					out.Close()
					return err
				}
				return out.Close()
			}()
		})
	}
	return func() error {
		wg.Wait()
		pprof.StopCPUProfile()
		own.Close()
		return errors.Join(errs...)
	}, nil
}
