package config

import (
	"bytes"
	"text/template"
)

var tmpl = template.Must(template.New("imxd.toml").Parse(`# imxd configuration: every key is optional except the [[domain]] name.
# The values shown are the defaults. docs/configuration.md describes each key.

# Where imxd keeps its database and its dial-back key.
data_dir = "{{.DataDir}}"
shutdown_timeout = "15s"  # how long a graceful shutdown (SIGTERM) may take

[log]
level = "info"   # debug, info, warn, error
format = "text"  # text or json

[listen]
server = "0.0.0.0:7468"    # other IMX servers connect here (publish it in DNS)
client = "127.0.0.1:7480"  # clients: HTTP, WebSocket at /imx, the web client
admin = "127.0.0.1:7481"   # admin API, /metrics, /healthz, /readyz (loopback only)

[dns]
server = ""  # resolver "ip:port"; empty uses /etc/resolv.conf

[federation]
max_conns_per_domain = 2      # outgoing connections per remote domain
max_inbound_per_domain = 8    # incoming connections per remote domain
max_inbound = 10000           # incoming connections in all
idle_timeout = "10m"          # close an incoming connection without traffic
dial_timeout = "5s"
request_timeout = "30s"
auth_timeout = "10s"          # one dial-back
min_backoff = "1s"            # wait before retrying a failed domain; doubles
max_backoff = "5m"
retry_for = "2m"              # retry a message to an unreachable domain this long
redirect_allow = []           # hosts a REDIRECT may send us to, besides a domain's own record
node = ""                     # this node's name in a multi-node domain
drain_to = ""                 # host:port of another node: on shutdown, REDIRECT peers there

[clients]
session_lifetime = "720h"     # how long a remembered login stays valid
max_connections = 10000       # client connections open at once; more get HTTP 503

[admin]
pprof = false                 # serve Go profiles at /debug/pprof/ on the admin listener

[[domain]]
name = "{{.Domain}}"
offline_messages = false      # keep messages for offline users (§6.4.3)
offline_limit = 100           # per user
max_message_size = 65536      # bytes of MIME per message
subscription_timeout = "30m"  # longest presence subscription granted
rate_limit = 120              # messages per minute per sender
rate_burst = 30
`))

// Template returns a commented configuration file for one domain, with every
// key at its default, as "imxd init" writes it.
func Template(domain, dataDir string) []byte {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct{ Domain, DataDir string }{domain, dataDir}); err != nil {
		panic(err) // the template and its data are fixed: cannot fail
	}
	return b.Bytes()
}
