package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/examhall/examhall/store"
)

// Config is the typed configuration of every subcommand. Each field is a
// flag and an EXAMHALL_* environment variable; a flag given on the command
// line wins over the environment.
type Config struct {
	Addr      string
	DataDir   string
	Database  string
	Redis     string
	PublicURL string
	// ICE settings for the media service (WebRTC).
	ICEServers  []string
	ICEUDPPort  int
	ICEPublicIP string
	// ICELoopback keeps media on 127.0.0.1: for a demo on one machine.
	ICELoopback bool
	LogLevel    slog.Level
	LogFormat   string
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout time.Duration
	// Candidates is how many candidates `demo` seeds.
	Candidates int
	// DebugAddr, when set, serves Go's profiler (net/http/pprof) there.
	DebugAddr string
	// TLSCert and TLSKey, when set, serve https with this certificate.
	TLSCert, TLSKey string
	// ACMEDomains, when set, serve https with certificates from Let's
	// Encrypt (ACME TLS-ALPN-01 on --addr, which must be reachable on 443).
	ACMEDomains []string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// MetricsToken, when set, is the bearer token /metrics asks for;
	// empty: /metrics answers only requests from this machine.
	MetricsToken string
	// FaceCheck counts faces on the server in every camera's key frames.
	FaceCheck bool
	// FaceEvery is the least time between two looks at one camera.
	FaceEvery time.Duration
	// FaceModels is the node_modules folder with the browser's face models.
	FaceModels string
	// NodeID names this node in its cluster (default: the host name).
	NodeID string
	// RecordingSegment is how long a recording file lasts (0: 30 s with a
	// blob store, else 5 min).
	RecordingSegment time.Duration
	// BlobStore, when set (s3://bucket?endpoint=host:port), keeps recording
	// segments in object storage; BlobCredentials is its ACCESS:SECRET.
	BlobStore, BlobCredentials string
	// NodeURL is where a browser reaches this node directly (default:
	// http(s)://<addr>); a room's sockets are sent there when it owns it.
	NodeURL string
	// SMTPURL, when set (smtp://user@host:587?from=exams@example.org),
	// sends notifications by mail; SMTPPassword is its account's password.
	// Empty: mails are written as .eml files under the data dir's mail/.
	SMTPURL, SMTPPassword string
	// SMSURL, when set, is the HTTP gateway text messages go to, with
	// SMSToken as its bearer token; empty: they are only logged.
	SMSURL, SMSToken string
	// MailRate is the most notifications sent a second.
	MailRate float64
	// BounceToken, when set, lets the mail provider report bounces.
	BounceToken string
}

// option is one row of the configuration table.
type option struct {
	name, usage, def string
	secret           bool // may come from EXAMHALL_<NAME>_FILE; never logged
	demoOnly         bool
	boolean          bool // a switch: --name alone means true
	set              func(c *Config, v string) error
}

var options = []option{
	{name: "addr", def: "127.0.0.1:8080", usage: "address to listen on (host:port)",
		set: func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("want host:port, e.g. 127.0.0.1:8080 or :8080")
			}
			c.Addr = v
			return nil
		}},
	{name: "data-dir", def: "./data", usage: "directory for the SQLite database, recordings and demo.json",
		set: func(c *Config, v string) error { c.DataDir = v; return nonEmpty(v) }},
	{name: "database", def: "", secret: true, usage: "empty: SQLite in the data dir; postgres://user:pass@host/db: PostgreSQL",
		set: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
				return fmt.Errorf("want empty (SQLite) or a postgres:// URL")
			}
			c.Database = v
			return nil
		}},
	{name: "redis", def: "", secret: true, usage: "empty: in-process bus (one node); redis://host:6379/0: Redis bus for a cluster",
		set: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
				return fmt.Errorf("want empty or a redis:// URL")
			}
			c.Redis = v
			return nil
		}},
	{name: "public-url", def: "", usage: "URL candidates use to reach this server, e.g. https://exam.example.org (default: http://<addr>); https makes cookies Secure",
		set: func(c *Config, v string) error {
			if v == "" {
				c.PublicURL = ""
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("want an http:// or https:// URL")
			}
			c.PublicURL = strings.TrimRight(v, "/")
			return nil
		}},
	{name: "ice-servers", def: "", usage: "comma-separated STUN/TURN URLs handed to browsers, e.g. turn:turn.example.org:3478 (media)",
		set: func(c *Config, v string) error {
			c.ICEServers = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "turn:") && !strings.HasPrefix(s, "turns:") {
					return fmt.Errorf("%q: want stun:, turn: or turns: URLs", s)
				}
				c.ICEServers = append(c.ICEServers, s)
			}
			return nil
		}},
	{name: "ice-udp-port", def: "0", usage: "one UDP port for all WebRTC media (ICE UDP mux); 0 picks ports per connection",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("want a port number 0-65535")
			}
			c.ICEUDPPort = n
			return nil
		}},
	{name: "ice-public-ip", def: "", usage: "public IP to announce for media when the server is behind 1:1 NAT",
		set: func(c *Config, v string) error {
			if v != "" && net.ParseIP(v) == nil {
				return fmt.Errorf("want an IP address")
			}
			c.ICEPublicIP = v
			return nil
		}},
	{name: "ice-loopback", def: "false", boolean: true, usage: "offer only 127.0.0.1 for media (a demo on one machine, tests)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			c.ICELoopback = b
			return nil
		}},
	{name: "log-level", def: "info", usage: "debug, info, warn or error",
		set: func(c *Config, v string) error { return c.LogLevel.UnmarshalText([]byte(v)) }},
	{name: "log-format", def: "text", usage: "text or json",
		set: func(c *Config, v string) error {
			if v != "text" && v != "json" {
				return fmt.Errorf("want text or json")
			}
			c.LogFormat = v
			return nil
		}},
	{name: "shutdown-timeout", def: "10s", usage: "how long a graceful stop may take",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration, e.g. 10s")
			}
			c.ShutdownTimeout = d
			return nil
		}},
	{name: "debug-addr", def: "", usage: "loopback address for Go's profiler (/debug/pprof), e.g. 127.0.0.1:6060; empty: off",
		set: func(c *Config, v string) error {
			if v == "" {
				c.DebugAddr = ""
				return nil
			}
			host, _, err := net.SplitHostPort(v)
			if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
				return fmt.Errorf("want a loopback host:port, e.g. 127.0.0.1:6060")
			}
			c.DebugAddr = v
			return nil
		}},
	{name: "tls-cert", def: "", usage: "PEM certificate (chain) file: serve https (phones give the camera only to https pages)",
		set: func(c *Config, v string) error { c.TLSCert = v; return nil }},
	{name: "tls-key", def: "", usage: "PEM private key file for --tls-cert",
		set: func(c *Config, v string) error { c.TLSKey = v; return nil }},
	{name: "acme-domain", def: "", usage: "comma-separated domain names: serve https with certificates from Let's Encrypt (cached under the data dir); --addr must be reachable on port 443",
		set: func(c *Config, v string) error {
			c.ACMEDomains = nil
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					c.ACMEDomains = append(c.ACMEDomains, d)
				}
			}
			return nil
		}},
	{name: "trusted-proxies", def: "", usage: "comma-separated CIDRs (or addresses) of reverse proxies whose X-Forwarded-For gives the client's address; empty: the header is never believed",
		set: func(c *Config, v string) error {
			c.TrustedProxies = nil
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part == "" {
					continue
				}
				if !strings.Contains(part, "/") {
					if ip := net.ParseIP(part); ip != nil && ip.To4() != nil {
						part += "/32"
					} else {
						part += "/128"
					}
				}
				_, n, err := net.ParseCIDR(part)
				if err != nil {
					return fmt.Errorf("want CIDRs such as 10.0.0.0/8,192.0.2.7: %q", part)
				}
				c.TrustedProxies = append(c.TrustedProxies, n)
			}
			return nil
		}},
	{name: "metrics-token", def: "", secret: true, usage: "bearer token /metrics asks for (Prometheus' authorization); empty: /metrics answers only requests from this machine",
		set: func(c *Config, v string) error { c.MetricsToken = v; return nil }},
	{name: "face-check", def: "true", boolean: true, usage: "count faces on the server in the cameras' key frames (no face, several people)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false")
			}
			c.FaceCheck = b
			return nil
		}},
	{name: "face-every", def: "2.5s", usage: "the server's face check looks at each camera at most this often (each look costs about 19 ms of CPU; 2.5s to 60s)",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 2500*time.Millisecond || d > time.Minute {
				return fmt.Errorf("want a duration from 2.5s to 60s")
			}
			c.FaceEvery = d
			return nil
		}},
	{name: "face-models", def: "frontend/node_modules", usage: "node_modules folder with @vladmandic/human and @tensorflow/tfjs-backend-wasm (make installs them); missing: the exam page does not analyse faces",
		set: func(c *Config, v string) error { c.FaceModels = v; return nil }},
	{name: "node-id", def: "", usage: "this node's name in a cluster, unique among its nodes (default: the host name)",
		set: func(c *Config, v string) error {
			if v == "" {
				h, err := os.Hostname()
				if err != nil {
					return fmt.Errorf("no host name to default to (%v): give --node-id", err)
				}
				v = h
			}
			if !store.ValidNodeID(v) {
				return fmt.Errorf("want 1-64 letters, digits, '.', '_' or '-'")
			}
			c.NodeID = v
			return nil
		}},
	{name: "node-url", def: "", usage: "URL a browser uses to reach this node directly, e.g. https://exam.example.org/node/n1 (default: http(s)://<addr>); sockets of the rooms it owns are sent there",
		set: func(c *Config, v string) error {
			if v == "" {
				c.NodeURL = ""
				return nil
			}
			u, err := url.Parse(v)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
				return fmt.Errorf("want an http:// or https:// URL with no query")
			}
			c.NodeURL = strings.TrimRight(v, "/")
			return nil
		}},
	{name: "blob-store", def: "", usage: "object storage for recording segments in a cluster: s3://BUCKET?endpoint=HOST:PORT[&secure=false][&region=R]; empty: recordings stay on local disk",
		set: func(c *Config, v string) error {
			if v != "" && !strings.HasPrefix(v, "s3://") {
				return fmt.Errorf("want empty or an s3:// URL")
			}
			c.BlobStore = v
			return nil
		}},
	{name: "recording-segment", def: "0", usage: "how long one recording file lasts before the next starts; 0: 30s with --blob-store (a dead node loses at most that), else 5m",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if v == "0" {
				d, err = 0, nil
			}
			if err != nil || d < 0 || (d > 0 && d < time.Second) {
				return fmt.Errorf("want 0 or a duration of at least 1s, e.g. 30s")
			}
			c.RecordingSegment = d
			return nil
		}},
	{name: "smtp-url", def: "", usage: "mail server for notifications: smtp://user@host:587?from=exams@example.org (tls=starttls, the default, tls or none); empty: mails are written to <data-dir>/mail/ as .eml files",
		set: func(c *Config, v string) error { c.SMTPURL = v; return nil }},
	{name: "smtp-password", def: "", secret: true, usage: "password of the --smtp-url account (give it as EXAMHALL_SMTP_PASSWORD_FILE)",
		set: func(c *Config, v string) error { c.SMTPPassword = v; return nil }},
	{name: "sms-url", def: "", usage: "HTTP gateway for text messages (POST {\"to\",\"text\"}); empty: text messages are only logged",
		set: func(c *Config, v string) error { c.SMSURL = v; return nil }},
	{name: "sms-token", def: "", secret: true, usage: "bearer token of --sms-url (give it as EXAMHALL_SMS_TOKEN_FILE)",
		set: func(c *Config, v string) error { c.SMSToken = v; return nil }},
	{name: "bounce-token", def: "", secret: true, usage: "bearer token the mail provider's bounce reports carry (POST /api/notify/bounces; give it as EXAMHALL_BOUNCE_TOKEN_FILE); empty: none are taken",
		set: func(c *Config, v string) error { c.BounceToken = v; return nil }},
	{name: "mail-rate", def: "10", usage: "the most notifications (mails and text messages) sent a second, whatever the queue",
		set: func(c *Config, v string) error {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || r <= 0 || r > 1000 {
				return fmt.Errorf("want a number of messages a second, from 0.01 to 1000")
			}
			c.MailRate = r
			return nil
		}},
	{name: "blob-credentials", def: "", secret: true, usage: "ACCESS_KEY:SECRET for --blob-store (give it as EXAMHALL_BLOB_CREDENTIALS_FILE)",
		set: func(c *Config, v string) error {
			if v != "" {
				if _, _, err := store.SplitCredentials(v); err != nil {
					return err
				}
			}
			c.BlobCredentials = v
			return nil
		}},
	{name: "candidates", def: "30", demoOnly: true, usage: "how many demo candidates to seed (demo only)",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100000 {
				return fmt.Errorf("want a number from 1 to 100000")
			}
			c.Candidates = n
			return nil
		}},
}

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// envName is the environment variable of an option: data-dir → EXAMHALL_DATA_DIR.
func envName(name string) string {
	return "EXAMHALL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// parseConfig reads flags, then the environment for flags not given, then
// defaults. Errors name the flag, its variable and what is wanted.
func parseConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("examhall "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	given := map[string]string{}
	for _, o := range options {
		if o.demoOnly && cmd != "demo" {
			continue
		}
		usage := fmt.Sprintf("%s (env %s, default %q)", o.usage, envName(o.name), o.def)
		set := func(v string) error {
			given[o.name] = v
			return nil
		}
		if o.boolean {
			fs.BoolFunc(o.name, usage, set)
		} else {
			fs.Func(o.name, usage, set)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q; run examhall %s -h", fs.Arg(0), cmd)
	}
	c := &Config{}
	for _, o := range options {
		v, ok := given[o.name]
		src := "--" + o.name
		if !ok {
			v, src, ok = getenv(envName(o.name)), envName(o.name), getenv(envName(o.name)) != ""
		}
		if !ok && o.secret {
			if f := getenv(envName(o.name) + "_FILE"); f != "" {
				b, err := os.ReadFile(f)
				if err != nil {
					return nil, fmt.Errorf("%s_FILE: %w", envName(o.name), err)
				}
				v, src, ok = strings.TrimSpace(string(b)), envName(o.name)+"_FILE", true
			}
		}
		if !ok {
			v, src = o.def, "default"
		}
		if err := o.set(c, v); err != nil {
			shown := v
			if o.secret {
				shown = "(hidden)"
			}
			return nil, fmt.Errorf("%s from %s = %s: %w", o.name, src, shown, err)
		}
	}
	switch {
	case c.BlobStore != "" && c.BlobCredentials == "":
		return nil, errors.New("--blob-store needs its credentials: EXAMHALL_BLOB_CREDENTIALS_FILE with ACCESS_KEY:SECRET")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together")
	case c.TLSCert != "" && len(c.ACMEDomains) > 0:
		return nil, errors.New("choose --tls-cert/--tls-key or --acme-domain, not both")
	}
	return c, nil
}

// https says whether examhall serves https itself.
func (c *Config) https() bool { return c.TLSCert != "" || len(c.ACMEDomains) > 0 }

// publicURL is where browsers reach the server listening on addr.
func (c *Config) publicURL(addr net.Addr) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	if c.https() {
		return "https://" + addr.String()
	}
	return "http://" + addr.String()
}
