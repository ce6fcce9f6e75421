// Command imxd is the imx server: instant messaging and presence for one or
// more domains, federated with every other IMX domain.
//
//	imxd [-c imxd.toml]          run
//	imxd -t [-c imxd.toml]       check the configuration and exit
//	imxd init DOMAIN [-dir DIR]  write a commented configuration for DOMAIN
//	imxd demo                    two domains on loopback, with DNS, to try imx
//
// docs/configuration.md describes the configuration file.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/imxproject/imx/config"
	"github.com/imxproject/imx/server"
)

const usage = `usage:
  imxd [-c FILE]               run the server (default FILE: imxd.toml)
  imxd -t [-c FILE]            check the configuration file and exit
  imxd init DOMAIN [-dir DIR]  write DIR/imxd.toml for DOMAIN and print its DNS record
  imxd demo                    run two demo domains on loopback (Ctrl-C stops)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "init":
			return initCmd(args[1:], stdout, stderr)
		case "demo":
			return demoCmd(args[1:], stdout, stderr)
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	fs := flag.NewFlagSet("imxd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	path := fs.String("c", "imxd.toml", "configuration file")
	check := fs.Bool("t", false, "check the configuration and exit")
	grace := fs.Duration("grace", 0, "how long a shutdown may take (default: shutdown_timeout of the configuration)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "imxd: unexpected argument %q\n%s", fs.Arg(0), usage)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "imxd: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok (%d domain(s): %v)\n", *path, len(cfg.Domains), cfg.DomainNames())
		return 0
	}
	logger := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.New(ctx, cfg, logger, server.Options{})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Run(ctx, *grace); err != nil {
		logger.Error("stopped on an error", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // config has checked it
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// initCmd writes a commented configuration, creates the data directory and
// prints the SRV record to publish.
func initCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("imxd init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "directory for imxd.toml and the data directory")
	host := fs.String("host", "", "the host name of this server, for the SRV record (default: imx.DOMAIN)")
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: imxd init DOMAIN [-dir DIR] [-host HOST]\n")
		return 2
	}
	domain := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	path, dataDir, err := writeInit(domain, *dir)
	if err != nil {
		fmt.Fprintf(stderr, "imxd init: %v\n", err)
		return 1
	}
	cfg, _ := config.Load(path)
	target := *host
	if target == "" {
		target = "imx." + cfg.Domains[0].Name
	}
	fmt.Fprintf(stdout, `wrote %s (data directory %s)

Publish this DNS record so that other IMX servers find yours (port 7468 is
listen.server in the configuration):

  _imx._tcp.%s. 3600 IN SRV 10 10 7468 %s.

and make sure %s has an A or AAAA record for this host.
Then add users (with imxd running):  imx admin user add alice@%s
and start the server:                 imxd -c %s
`, path, dataDir, cfg.Domains[0].Name, target, target, cfg.Domains[0].Name, path)
	return 0
}
