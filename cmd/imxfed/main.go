// Command imxfed runs a two-domain IMX federation in one process, on
// loopback: an in-process DNS server publishes the _imx._tcp records of
// alpha.localhost (on 127.0.0.2) and beta.localhost (on 127.0.0.3); the two
// servers find each other through it, authenticate by dial-back, and
// exchange messages in both directions. It prints each step, then keeps
// running (and answering) until interrupted; -once exits after the
// exchange.
//
//	go run ./cmd/imxfed
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/imxproject/imx/dialback"
	"github.com/imxproject/imx/discovery"
	"github.com/imxproject/imx/internal/localdns"
	"github.com/imxproject/imx/s2s"
	"github.com/imxproject/imx/wire"
)

func main() {
	once := flag.Bool("once", false, "exit after the exchange")
	verbose := flag.Bool("v", false, "log the servers' debug lines to stderr")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *once, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "imxfed:", err)
		os.Exit(1)
	}
}

// domain is one running domain of the demo.
type domain struct {
	name string
	ip   netip.Addr
	srv  *s2s.Server
	res  *discovery.Resolver
	ln   net.Listener
	done chan error
}

func run(ctx context.Context, out io.Writer, once, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	dnsSrv, err := localdns.Start(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		return err
	}
	defer dnsSrv.Close()
	fmt.Fprintf(out, "DNS server on %s (udp and tcp)\n", dnsSrv.Addr())

	var domains []*domain
	defer func() {
		for _, d := range domains {
			d.stop()
		}
	}()
	for _, spec := range []struct{ name, ip string }{{"alpha.localhost", "127.0.0.2"}, {"beta.localhost", "127.0.0.3"}} {
		d, err := startDomain(spec.name, netip.MustParseAddr(spec.ip), dnsSrv, out, logger)
		if err != nil {
			return err
		}
		domains = append(domains, d)
	}
	alpha, beta := domains[0], domains[1]

	send := func(from *domain, sender, to string, text string) error {
		mime := "From: " + sender + "\r\nTo: " + to + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
		id := make([]byte, 8)
		copy(id, text)
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := from.srv.Request(rctx, from.name, to[strings.LastIndexByte(to, '@')+1:],
			&wire.Message{From: sender, To: to, ID: id, MIME: []byte(mime)})
		if err != nil {
			return fmt.Errorf("%s → %s: %w", sender, to, err)
		}
		fmt.Fprintf(out, "%s → %s: %q: %s in %v\n", sender, to, text, resp.(*wire.Result).Code.String(), time.Since(start).Round(time.Microsecond))
		return nil
	}
	fmt.Fprintln(out, "alice@alpha.localhost writes to bob@beta.localhost (first contact: DNS lookup, connection, dial-back)")
	if err := send(alpha, "alice@alpha.localhost", "bob@beta.localhost", "Hello Bob!"); err != nil {
		return err
	}
	fmt.Fprintln(out, "bob@beta.localhost answers (over the connections already trusted, no new dial-back)")
	if err := send(beta, "bob@beta.localhost", "alice@alpha.localhost", "Hi Alice, loud and clear."); err != nil {
		return err
	}
	for _, d := range domains {
		for _, c := range d.srv.Conns() {
			dir := "inbound "
			if c.Outbound {
				dir = "outbound"
			}
			fmt.Fprintf(out, "%s: connection %d %s %s, authenticated pairs %v\n", d.name, c.ID, dir, c.RemoteAddr, c.Pairs)
		}
	}
	fmt.Fprintf(out, "dial-backs: %s ran %d as receiver, %s ran %d\n", alpha.name, alpha.srv.Stats.AuthOK.Load(), beta.name, beta.srv.Stats.AuthOK.Load())
	fmt.Fprintln(out)
	if once {
		return nil
	}
	fmt.Fprintln(out, "running; press Ctrl-C to stop")
	<-ctx.Done()
	fmt.Fprintln(out, "stopping")
	return nil
}

func startDomain(name string, ip netip.Addr, dnsSrv *localdns.Server, out io.Writer, logger *slog.Logger) (*domain, error) {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, discovery.DefaultPort).String())
	if err != nil {
		// The default port is taken: any port will do, since the SRV
		// record names it.
		if ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, 0).String()); err != nil {
			return nil, fmt.Errorf("%s: listen: %w", name, err)
		}
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	host := "imx." + name
	dnsSrv.SetA(host, ip)
	dnsSrv.SetSRV(name, localdns.SRV{Priority: 10, Weight: 10, Port: ap.Port(), Target: host})
	res, err := discovery.New(discovery.Config{Server: dnsSrv.Addr()})
	if err != nil {
		ln.Close()
		return nil, err
	}
	key, err := dialback.NewKey()
	if err != nil {
		ln.Close()
		res.Close()
		return nil, err
	}
	cfg := s2s.Config{
		Domains:  []string{name},
		Resolver: res,
		Key:      key,
		Logger:   logger.With("domain", name),
		// Outgoing connections leave from the domain's own address.
		Dial: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}).DialContext,
		Handler: s2s.HandlerFunc(func(_ context.Context, in s2s.Inbound) wire.Record {
			if m, ok := in.Record.(*wire.Message); ok {
				_, body, _ := strings.Cut(string(m.MIME), "\r\n\r\n")
				fmt.Fprintf(out, "  %s received from %s (authenticated domain %s): %q\n", name, m.From, in.From, body)
				return &wire.Result{Code: wire.StatusDelivered, Count: 1}
			}
			return &wire.Result{Code: wire.StatusUnsupported}
		}),
	}
	cfg.Link.Software = "imxfed/0.1"
	srv, err := s2s.New(cfg)
	if err != nil {
		ln.Close()
		res.Close()
		return nil, err
	}
	d := &domain{name: name, ip: ip, srv: srv, res: res, ln: ln, done: make(chan error, 1)}
	go func() { d.done <- srv.Serve(ln) }()
	fmt.Fprintf(out, "%s: serving on %s; published _imx._tcp.%s SRV 10 10 %d %s.\n", name, ap, name, ap.Port(), host)
	return d, nil
}

func (d *domain) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	if err := <-d.done; err != nil && !errors.Is(err, s2s.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, d.name+":", err)
	}
	d.res.Close()
}
