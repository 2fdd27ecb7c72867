// Package config is Ferry's one typed settings structure. Every field is both
// a command-line flag of `ferry serve` and a TOML key of the same name; the
// doc comment of a field is its help text (unit and default).
package config

import "time"

// Duration is a time.Duration that reads and writes TOML strings like "30s".
type Duration struct{ time.Duration }

// Config holds every setting of a Ferry server.
type Config struct {
	// Listen is the address of the plain/explicit-TLS control listener.
	Listen string `toml:"listen" flag:"listen" help:"control listener address (explicit FTPS via AUTH TLS)"`
	// ImplicitTLSListen, when set, is an implicit-FTPS listener (port 990 style).
	ImplicitTLSListen string `toml:"implicit_tls_listen" flag:"implicit-tls-listen" help:"implicit FTPS listener address; empty disables it"`
	// Data is the data directory: user store, public/, home/, TLS certificate.
	Data string `toml:"data" flag:"data" help:"data directory: user store, public/, home/, generated TLS certificate"`
	// PassivePorts is the LO-HI range of passive data ports.
	PassivePorts string `toml:"passive_ports" flag:"passive-ports" help:"passive data port range LO-HI with 1024 <= LO <= HI <= 65535; \"0\" or empty: any port the OS picks"`
	// PublicHost is the IPv4 address (or host name) advertised in PASV replies.
	PublicHost string `toml:"public_host" flag:"public-host" help:"address advertised in PASV replies (for NAT); empty uses the control connection's local address"`
	// Anonymous allows the anonymous/ftp logins, read-only in DATA/public.
	Anonymous bool `toml:"anonymous" flag:"anonymous" help:"allow anonymous read-only logins (anonymous, ftp)"`
	// AnonymousUploadDir, when set, is a directory under public/ where
	// anonymous users may upload (a drop box: uploads cannot be listed or read).
	AnonymousUploadDir string `toml:"anonymous_upload_dir" flag:"anonymous-upload-dir" help:"drop-box directory under public/ where anonymous may upload; empty: none"`
	Banner             string `toml:"banner" flag:"banner" help:"greeting text after 220; one line"`

	LoginTimeout Duration `toml:"login_timeout" flag:"login-timeout" help:"time allowed from connect to a successful login"`
	IdleTimeout  Duration `toml:"idle_timeout" flag:"idle-timeout" help:"time allowed between commands when no transfer runs"`
	DataTimeout  Duration `toml:"data_timeout" flag:"data-timeout" help:"time a data connection may wait to connect or stall"`
	MaxLineBytes int      `toml:"max_line_bytes" flag:"max-line-bytes" help:"longest control line accepted, bytes"`
	// BackendTimeout bounds each command's storage, authentication and ban calls.
	BackendTimeout Duration `toml:"backend_timeout" flag:"backend-timeout" help:"time a command's storage, user-store and ban calls may take before the command fails with 451"`
	// ShutdownGrace is how long running transfers may go on after SIGTERM.
	ShutdownGrace Duration `toml:"shutdown_grace" flag:"shutdown-grace" help:"time running transfers get to finish on shutdown (SIGTERM, SIGINT) before they are aborted"`

	MaxSessions        int `toml:"max_sessions" flag:"max-sessions" help:"maximum concurrent control connections; 0 unlimited"`
	MaxSessionsPerIP   int `toml:"max_sessions_per_ip" flag:"max-sessions-per-ip" help:"maximum concurrent connections from one client IP; 0 unlimited"`
	MaxSessionsPerUser int `toml:"max_sessions_per_user" flag:"max-sessions-per-user" help:"maximum concurrent sessions of one user; 0 unlimited"`
	MaxLoginFailures   int `toml:"max_login_failures" flag:"max-login-failures" help:"failed logins allowed on one connection before it is closed"`
	// AuthHashMemory bounds the memory of the password checks that run at
	// once, server-wide (an argon2id check holds its memory cost, 19 MiB
	// for new hashes); further logins wait for their turn until the login
	// deadline.
	AuthHashMemory int64 `toml:"auth_hash_memory" flag:"auth-hash-memory" help:"bytes that concurrent password checks may hold together (19 MiB each for new hashes); further logins wait, and get 421 at the login deadline; at least 1048576"`

	BanThreshold int      `toml:"ban_threshold" flag:"ban-threshold" help:"score (failed logins, protocol errors) within ban_window that bans an IP; 0 disables bans"`
	BanWindow    Duration `toml:"ban_window" flag:"ban-window" help:"window over which the ban score is counted"`
	BanDuration  Duration `toml:"ban_duration" flag:"ban-duration" help:"first ban length; each repeat doubles it"`
	BanAllow     []string `toml:"ban_allow" flag:"ban-allow" help:"networks never banned: CIDR prefixes or bare IP addresses"`

	FileUmask     string   `toml:"file_umask" flag:"file-umask" help:"umask for uploaded files, octal 000-777"`
	DirUmask      string   `toml:"dir_umask" flag:"dir-umask" help:"umask for created directories, octal 000-777"`
	HiddenPattern []string `toml:"hidden_patterns" flag:"hidden-patterns" help:"glob patterns (path.Match) of names never listed nor reachable"`
	DenyUpload    []string `toml:"deny_upload_patterns" flag:"deny-upload-patterns" help:"glob patterns (path.Match) of names that cannot be uploaded"`
	// PatternsCaseSensitive makes hidden_patterns and deny_upload_patterns
	// match exactly; by default they match names in any case.
	PatternsCaseSensitive bool  `toml:"patterns_case_sensitive" flag:"patterns-case-sensitive" help:"match hidden_patterns and deny_upload_patterns exactly; false: in any case (*.exe also refuses EVIL.EXE)"`
	UploadRate            int64 `toml:"upload_rate" flag:"upload-rate" help:"server-wide upload limit, bytes/s; 0 unlimited"`
	DownloadRate          int64 `toml:"download_rate" flag:"download-rate" help:"server-wide download limit, bytes/s; 0 unlimited"`

	TLSCert            string   `toml:"tls_cert" flag:"tls-cert" help:"PEM certificate (chain) file; empty: a self-signed one in the data directory"`
	TLSKey             string   `toml:"tls_key" flag:"tls-key" help:"PEM private key file"`
	TLSRequired        string   `toml:"tls_required" flag:"tls-required" help:"none|control|data|all: what must be encrypted"`
	TLSAnonymousExempt bool     `toml:"tls_anonymous_exempt" flag:"tls-anonymous-exempt" help:"anonymous sessions need no TLS whatever tls_required says"`
	TLSMinVersion      string   `toml:"tls_min_version" flag:"tls-min-version" help:"lowest TLS version accepted: 1.2 or 1.3"`
	TLSSessionReuse    string   `toml:"tls_session_reuse" flag:"tls-session-reuse" help:"required|optional: must a protected data connection resume its own control session"`
	TLSReuseExempt     []string `toml:"tls_reuse_exempt" flag:"tls-reuse-exempt" help:"client networks (CIDR prefixes or bare IP addresses) exempt from the session-reuse check"`
	TLSClientCA        string   `toml:"tls_client_ca" flag:"tls-client-ca" help:"PEM CA bundle to verify client certificates; empty: none asked"`
	TLSAllowCCC        bool     `toml:"tls_allow_ccc" flag:"tls-allow-ccc" help:"allow CCC (clear the control channel after login)"`

	LogLevel  string `toml:"log_level" flag:"log-level" help:"log level: debug|info|warn|error"`
	LogFormat string `toml:"log_format" flag:"log-format" help:"log format: text|json"`

	// The tables below are set only in the file, never by flags: a struct
	// field is a TOML table ([storage]), a slice of structs an array of
	// tables ([[vhost]]). Their keys are decoded as strictly as the rest.
	Storage  Storage  `toml:"storage" help:"where the files users see are kept"`
	Database Database `toml:"database" help:"the user store"`
	Metrics  Metrics  `toml:"metrics" help:"reserved for a metrics endpoint, which Ferry does not have yet"`
	VHosts   []VHost  `toml:"vhost" help:"virtual hosts, chosen by the HOST command (RFC 7151). Not supported yet: a file with a [[vhost]] table is refused"`
}

// Storage is the [storage] table.
type Storage struct {
	Backend string `toml:"backend" help:"storage backend; only \"local\" exists: the disk under the data directory (public/, home/)"`
}

// Database is the [database] table.
type Database struct {
	URL string `toml:"url" help:"user store as sqlite:PATH; a relative PATH is inside the data directory"`
}

// Metrics is the [metrics] table.
type Metrics struct {
	Listen string `toml:"listen" help:"host:port of a metrics endpoint; must stay empty, since none exists yet"`
}

// VHost is one [[vhost]] table.
type VHost struct {
	Name   string `toml:"name" help:"host name a client sends with HOST; required and unique"`
	Banner string `toml:"banner" help:"greeting of this host; empty: the server's banner"`
}

// DefaultDatabaseURL is the user store when [database] does not name one.
const DefaultDatabaseURL = "sqlite:users.db"

// Defaults returns the settings used when neither a flag nor the file sets one.
func Defaults() Config {
	return Config{
		Listen:           ":2121",
		Data:             "./ferry-data",
		PassivePorts:     "50000-50999",
		Anonymous:        true,
		Banner:           "Ferry FTP server ready.",
		LoginTimeout:     Duration{60 * time.Second},
		IdleTimeout:      Duration{5 * time.Minute},
		DataTimeout:      Duration{30 * time.Second},
		MaxLineBytes:     4096,
		ShutdownGrace:    Duration{30 * time.Second},
		BackendTimeout:   Duration{30 * time.Second},
		MaxSessions:      2000,
		MaxSessionsPerIP: 50,
		MaxLoginFailures: 3,
		AuthHashMemory:   256 << 20,
		BanThreshold:     20,
		BanWindow:        Duration{10 * time.Minute},
		BanDuration:      Duration{15 * time.Minute},
		FileUmask:        "022",
		DirUmask:         "022",
		TLSRequired:      "none",
		TLSMinVersion:    "1.2",
		TLSSessionReuse:  "required",
		LogLevel:         "info",
		LogFormat:        "text",
		Storage:          Storage{Backend: "local"},
		Database:         Database{URL: DefaultDatabaseURL},
	}
}
