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
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/imxproject/imx/addr"
	"github.com/imxproject/imx/config"
	"github.com/imxproject/imx/internal/localdns"
	"github.com/imxproject/imx/server"
)

// DemoPassword is the password of the demo users.
const DemoPassword = "imx-demo"

var demoDomains = []struct {
	name  string
	ip    string
	users []string
}{
	{"alpha.localhost", "127.0.0.2", []string{"alice", "bob"}},
	{"beta.localhost", "127.0.0.3", []string{"carol", "dave"}},
}

// demoCmd runs two domains on loopback with an in-process DNS server that
// publishes their _imx._tcp records, creates two users on each, prints how
// to connect, and runs until interrupted.
func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imxd demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, stdout, logger); err != nil {
		fmt.Fprintf(stderr, "imxd demo: %v\n", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, out io.Writer, logger *slog.Logger) error {
	dns, err := localdns.Start(netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		return err
	}
	defer dns.Close()
	tmp, err := os.MkdirTemp("", "imxd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(demoDomains))
	defer wg.Wait()
	type running struct {
		name, client, admin string
		users               []string
	}
	var all []running
	for _, d := range demoDomains {
		ip := netip.MustParseAddr(d.ip)
		text := fmt.Sprintf(`data_dir = %q
[log]
level = "warn"
[listen]
server = "%s"
client = "%s"
admin = "%s"
[dns]
server = %q
[federation]
min_backoff = "200ms"
max_backoff = "2s"
retry_for = "10s"
[[domain]]
name = %q
offline_messages = true
`, filepath.Join(tmp, d.name), freePort(ip, 7468), freePort(ip, 7480), freePort(ip, 7481), dns.Addr(), d.name)
		cfg, err := config.Parse([]byte(text))
		if err != nil {
			return err
		}
		srv, err := server.New(ctx, cfg, logger.With("domain", d.name), server.Options{
			// Connections leave from the domain's own address.
			Dial: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}).DialContext,
		})
		if err != nil {
			return err
		}
		for _, u := range d.users {
			if err := srv.Store().CreateAccount(ctx, addr.MustParse(u+"@"+d.name), DemoPassword); err != nil {
				return err
			}
		}
		wg.Go(func() {
			if err := srv.Run(ctx, 5*time.Second); err != nil {
				errc <- fmt.Errorf("%s: %w", d.name, err)
			}
		})
		// Publish the domain once it listens.
		deadline := time.Now().Add(10 * time.Second)
		for srv.Addr("admin") == nil {
			if time.Now().After(deadline) {
				return errors.New(d.name + " did not start listening")
			}
			select {
			case err := <-errc:
				return err
			case <-time.After(5 * time.Millisecond):
			}
		}
		port := netip.MustParseAddrPort(srv.Addr("server").String()).Port()
		host := "imx." + d.name
		dns.SetA(host, ip)
		dns.SetSRV(d.name, localdns.SRV{Priority: 10, Weight: 10, Port: port, Target: host})
		all = append(all, running{name: d.name, client: srv.Addr("client").String(), admin: srv.Addr("admin").String(), users: d.users})
		fmt.Fprintf(out, "%s: server %s:%d (published as _imx._tcp.%s SRV 10 10 %d %s.), clients ws://%s/imx, admin http://%s\n",
			d.name, d.ip, port, d.name, port, host, srv.Addr("client"), srv.Addr("admin"))
	}
	fmt.Fprintf(out, "\nDNS for the demo domains: %s (udp and tcp)\nusers (password %q):", dns.Addr(), DemoPassword)
	for _, r := range all {
		for _, u := range r.users {
			fmt.Fprintf(out, " %s@%s", u, r.name)
		}
	}
	a, b := all[0], all[1]
	fmt.Fprintf(out, `

Try it, in two other terminals (each needs its own IMX config home):
  XDG_CONFIG_HOME=/tmp/imx-alice IMX_PASSWORD=%[5]s go run ./cmd/imx login ws://%[1]s/imx alice@%[2]s
  XDG_CONFIG_HOME=/tmp/imx-alice go run ./cmd/imx chat carol@%[4]s
  XDG_CONFIG_HOME=/tmp/imx-carol IMX_PASSWORD=%[5]s go run ./cmd/imx login ws://%[3]s/imx carol@%[4]s
  XDG_CONFIG_HOME=/tmp/imx-carol go run ./cmd/imx chat alice@%[2]s

ready; press Ctrl-C to stop
`, a.client, a.name, b.client, b.name, DemoPassword)
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping")
		return nil
	case err := <-errc:
		return err
	}
}

// freePort returns ip:port if that port is free, else ip:0 (any port), so
// that the demo has the usual ports when it can.
func freePort(ip netip.Addr, port uint16) string {
	ap := netip.AddrPortFrom(ip, port)
	ln, err := net.Listen("tcp", ap.String())
	if err != nil {
		return netip.AddrPortFrom(ip, 0).String()
	}
	ln.Close()
	return ap.String()
}
