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
	// ExtraListen are more control listeners, like Listen (another
	// address family or interface, say).
	ExtraListen []string `toml:"extra_listen" flag:"extra-listen" help:"more control listener addresses, like listen; empty: none"`
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
	// LoginMessage is sent before the text of every successful login's
	// reply (230), as a multi-line reply; "\n" separates its lines.
	LoginMessage string `toml:"login_message" flag:"login-message" help:"message shown after every successful login, as a multi-line 230 reply (lines separated by newlines, at most 100); empty: none"`

	LoginTimeout Duration `toml:"login_timeout" flag:"login-timeout" help:"time allowed from connect to a successful login"`
	IdleTimeout  Duration `toml:"idle_timeout" flag:"idle-timeout" help:"time allowed between commands when no transfer runs"`
	DataTimeout  Duration `toml:"data_timeout" flag:"data-timeout" help:"time a data connection may wait to connect or stall"`
	MaxLineBytes int      `toml:"max_line_bytes" flag:"max-line-bytes" help:"longest control line accepted, bytes"`
	// BackendTimeout bounds each command's storage, authentication and ban calls.
	BackendTimeout Duration `toml:"backend_timeout" flag:"backend-timeout" help:"time a command's storage, user-store and ban calls may take before the command fails with 451"`
	// ShutdownGrace is how long running transfers may go on after SIGTERM.
	ShutdownGrace Duration `toml:"shutdown_grace" flag:"shutdown-grace" help:"time running transfers get to finish on shutdown (SIGTERM, SIGINT) before they are aborted; 0 aborts them at once"`
	// DrainTimeout is how long the old process of a binary upgrade lets
	// its running transfers finish.
	DrainTimeout Duration `toml:"drain_timeout" flag:"drain-timeout" help:"time the old process of a binary upgrade (ferry upgrade, SIGUSR2) lets running transfers finish before it aborts them and exits; 0 aborts them at once"`
	// UpgradeTimeout bounds the start of the new binary in an upgrade.
	UpgradeTimeout Duration `toml:"upgrade_timeout" flag:"upgrade-timeout" help:"time the new binary of an upgrade has to say it is ready; after it, it is killed and the old process keeps serving"`

	MaxSessions        int `toml:"max_sessions" flag:"max-sessions" help:"maximum concurrent control connections; 0 unlimited"`
	MaxSessionsPerIP   int `toml:"max_sessions_per_ip" flag:"max-sessions-per-ip" help:"maximum concurrent connections from one client IP; 0 unlimited"`
	MaxSessionsPerUser int `toml:"max_sessions_per_user" flag:"max-sessions-per-user" help:"maximum concurrent sessions of one user; 0 unlimited"`
	MaxLoginFailures   int `toml:"max_login_failures" flag:"max-login-failures" help:"failed logins allowed on one connection before it is closed"`
	// AuthHashMemory bounds the memory of the password checks that run at
	// once, server-wide (an argon2id check holds its memory cost, 19 MiB
	// for new hashes); further logins wait for their turn until the login
	// deadline. 0 is users.DefaultHashMemory: one check per processor.
	AuthHashMemory int64 `toml:"auth_hash_memory" flag:"auth-hash-memory" help:"bytes that concurrent password checks may hold together (19 MiB each for new hashes); further logins wait, and get 421 at the login deadline; 0: one check per processor (GOMAXPROCS), at most 268435456, and on S3 at most two; else at least 1048576"`

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
	// HashMaxSize and HashPerUser bound the digests HASH and the X* commands
	// compute by reading a file that has no stored digest.
	HashMaxSize int64 `toml:"hash_max_size" flag:"hash-max-size" help:"largest file or range, bytes, that HASH, XCRC, XMD5 and XSHA* read to hash when no digest is stored with the file; larger ones get 556; 0 unlimited"`
	HashPerUser int   `toml:"hash_per_user" flag:"hash-per-user" help:"digests read on demand that one user may have running at once, over all sessions; more get 450; 0 unlimited"`

	TLSCert            string   `toml:"tls_cert" flag:"tls-cert" help:"PEM certificate (chain) file; empty: a self-signed one in the data directory"`
	TLSKey             string   `toml:"tls_key" flag:"tls-key" help:"PEM private key file"`
	TLSRequired        string   `toml:"tls_required" flag:"tls-required" help:"none|control|data|all: what must be encrypted"`
	TLSAnonymousExempt bool     `toml:"tls_anonymous_exempt" flag:"tls-anonymous-exempt" help:"anonymous sessions need no TLS whatever tls_required says"`
	TLSMinVersion      string   `toml:"tls_min_version" flag:"tls-min-version" help:"lowest TLS version accepted: 1.2 or 1.3"`
	TLSSessionReuse    string   `toml:"tls_session_reuse" flag:"tls-session-reuse" help:"required|optional: must a protected data connection resume its own control session"`
	TLSReuseExempt     []string `toml:"tls_reuse_exempt" flag:"tls-reuse-exempt" help:"client networks (CIDR prefixes or bare IP addresses) exempt from the session-reuse check"`
	TLSClientCA        string   `toml:"tls_client_ca" flag:"tls-client-ca" help:"PEM CA bundle to verify client certificates; empty: none asked"`
	TLSAllowCCC        bool     `toml:"tls_allow_ccc" flag:"tls-allow-ccc" help:"allow CCC (clear the control channel after login)"`

	// ACMEDomains, when set, makes Ferry obtain and renew its certificate
	// from an ACME (RFC 8555) CA instead of using tls_cert or a self-signed one.
	ACMEDomains    []string `toml:"acme_domains" flag:"acme-domains" help:"domain names of a certificate obtained and renewed from an ACME CA (Let's Encrypt); setting them accepts the CA's terms of service; empty: no ACME"`
	ACMEEmail      string   `toml:"acme_email" flag:"acme-email" help:"contact e-mail of the ACME account (expiry notices); empty: none"`
	ACMECA         string   `toml:"acme_ca" flag:"acme-ca" help:"ACME directory URL of the CA"`
	ACMECARoot     string   `toml:"acme_ca_root" flag:"acme-ca-root" help:"PEM file of the root that signs the ACME directory's HTTPS certificate (a private CA); empty: the system's roots"`
	ACMEChallenges []string `toml:"acme_challenges" flag:"acme-challenges" help:"challenges Ferry answers: http-01 (on acme_http_listen) and/or tls-alpn-01 (on acme_tls_listen)"`
	ACMEHTTPListen string   `toml:"acme_http_listen" flag:"acme-http-listen" help:"address of the HTTP-01 challenge listener; the CA connects to port 80 of the domain"`
	ACMETLSListen  string   `toml:"acme_tls_listen" flag:"acme-tls-listen" help:"address of the TLS-ALPN-01 challenge listener; the CA connects to port 443 of the domain"`
	// ACMERenewBefore is how long before expiry the certificate is renewed.
	ACMERenewBefore Duration `toml:"acme_renew_before" flag:"acme-renew-before" help:"renew the ACME certificate when this much of its validity is left; 0: when two thirds of its lifetime have passed"`

	// DiagnosePublicNetworks are client networks the NAT diagnosis treats as
	// the Internet whatever their address class.
	DiagnosePublicNetworks []string `toml:"diagnose_public_networks" flag:"diagnose-public-networks" help:"client networks (CIDR prefixes or bare IP addresses) the NAT diagnosis treats as public (the Internet) whatever their address class; empty: only publicly routable addresses"`

	LogLevel  string `toml:"log_level" flag:"log-level" help:"log level: debug|info|warn|error"`
	LogFormat string `toml:"log_format" flag:"log-format" help:"log format: text|json"`
	// Xferlog and AuthLog are files for other tools (webalizer, AWStats,
	// fail2ban); both reopen on SIGUSR1, for logrotate.
	Xferlog       string `toml:"xferlog" flag:"xferlog" help:"file to append the xferlog to (wu-ftpd/ProFTPD/vsftpd format: one line per finished, aborted or failed download or upload); empty: none"`
	AuthLog       string `toml:"auth_log" flag:"auth-log" help:"file to append the auth log to: one line per login success, failure and ban, for fail2ban; empty: none"`
	AuthLogFormat string `toml:"auth_log_format" flag:"auth-log-format" help:"layout of auth_log: ferry (contrib/fail2ban/filter.d/ferry.conf reads it) or vsftpd (vsftpd.log lines, read by fail2ban's stock vsftpd filter)"`

	// The tables below are set only in the file, never by flags: a struct
	// field is a TOML table ([storage]), a slice of structs an array of
	// tables ([[vhost]]). Their keys are decoded as strictly as the rest.
	Storage  Storage  `toml:"storage" help:"where the files users see are kept"`
	Database Database `toml:"database" help:"the database of users and bans (package db): SQLite or PostgreSQL; see docs/database.md"`
	Metrics  Metrics  `toml:"metrics" help:"the Prometheus metrics endpoint (off by default); its keys are also flags"`
	VHosts   []VHost  `toml:"vhost" help:"virtual hosts, chosen by the HOST command (RFC 7151). Not supported yet: a file with a [[vhost]] table is refused"`
}

// Storage is the [storage] table. Its keys are also flags of `ferry serve`
// (--storage, --s3-bucket, ...). The s3_* keys apply to backend "s3" and
// must stay unset with "local".
type Storage struct {
	Backend string `toml:"backend" flag:"storage" help:"storage backend: \"local\", the disk under the data directory (public/, home/), or \"s3\", an S3-compatible bucket (the s3_* keys)"`
	// S3Bucket is required with backend "s3".
	S3Bucket string `toml:"s3_bucket" flag:"s3-bucket" help:"S3 bucket holding the files; required with backend \"s3\""`
	// S3Endpoint is an http(s) URL; empty means AWS itself.
	S3Endpoint string `toml:"s3_endpoint" flag:"s3-endpoint" help:"URL of the S3 service (http://host:port or https://host); empty: AWS, in s3_region"`
	S3Region   string `toml:"s3_region" flag:"s3-region" help:"S3 region the requests are signed for (\"auto\" for Cloudflare R2)"`
	// S3Prefix is a key prefix without leading or trailing slash.
	S3Prefix    string `toml:"s3_prefix" flag:"s3-prefix" help:"key prefix of Ferry's objects in the bucket (PREFIX/public/, PREFIX/home/NAME/); empty: the bucket's top level"`
	S3PathStyle bool   `toml:"s3_path_style" flag:"s3-path-style" help:"address the bucket in the URL path (http://host/bucket/key), as MinIO, Ceph RGW, Garage and versitygw want; false: virtual-hosted style (https://bucket.host/key), as AWS wants"`
	// S3AccessKey and S3SecretKeyFile are set together or not at all.
	S3AccessKey     string `toml:"s3_access_key" flag:"s3-access-key" help:"access key ID; empty: AWS_ACCESS_KEY_ID (and AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) from the environment"`
	S3SecretKeyFile string `toml:"s3_secret_key_file" flag:"s3-secret-key-file" help:"file whose first line is the secret access key of s3_access_key"`
	// S3PartSize is between 5 MiB and 5 GiB, S3's limits for a part.
	S3PartSize int64 `toml:"s3_part_size" flag:"s3-part-size" help:"bytes of one part of a multipart upload, from 5242880 (5 MiB) to 5368709120 (5 GiB); an upload smaller than one part is a single PutObject"`
	// S3BufferBudget is at least S3PartSize.
	S3BufferBudget int64 `toml:"s3_buffer_budget" flag:"s3-buffer-budget" help:"bytes that the part buffers of all uploads may hold together, server-wide; when it is used up, uploads wait for a buffer (their clients are slowed down); at least s3_part_size"`
	// S3UploadConcurrency is from 1 to S3MaxUploadConcurrency.
	S3UploadConcurrency int `toml:"s3_upload_concurrency" flag:"s3-upload-concurrency" help:"parts of one multipart upload sent at once, from 1 to 64; each holds a part buffer of s3_buffer_budget, and the part being filled one more"`
	// S3OrphanAge is how old an unfinished multipart upload of Ferry's
	// must be before a sweep aborts it.
	S3OrphanAge Duration `toml:"s3_orphan_age" flag:"s3-orphan-age" help:"age at which an unfinished multipart upload that Ferry started is aborted, by the sweep at start and every min(s3_orphan_age, 1h) after (uploads a crash left behind)"`
	S3Checksum  string   `toml:"s3_checksum" flag:"s3-checksum" help:"when_supported|when_required: send a CRC32 checksum with every upload, or only when the request needs one (for S3 clones that refuse checksums)"`
}

// S3 part and budget limits.
const (
	// S3MinPartSize is S3's smallest part but the last of an upload.
	S3MinPartSize = 5 << 20
	// S3MaxPartSize is S3's largest part.
	S3MaxPartSize = 5 << 30
	// S3MaxUploadConcurrency bounds s3_upload_concurrency.
	S3MaxUploadConcurrency = 64
)

// Database is the [database] table. The url may also come from --database
// (over the file) or the environment variable FERRY_DATABASE (over the file,
// under the flag), which keeps a password out of the process list.
type Database struct {
	URL string `toml:"url" help:"sqlite:PATH (a relative PATH is inside the data directory) or a PostgreSQL url postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=require or key=value DSN; also --database or FERRY_DATABASE"`
	// PoolSize bounds the connections of one process.
	PoolSize int `toml:"pool_size" help:"connections one Ferry process keeps to the database at most; PostgreSQL's max_connections must cover every process's pool plus one per listener"`
	// StatementTimeout bounds each statement.
	StatementTimeout Duration `toml:"statement_timeout" help:"time one statement may take (PostgreSQL statement_timeout; on SQLite the wait for another writer's lock)"`
	// ConnectTimeout bounds one connection attempt.
	ConnectTimeout Duration `toml:"connect_timeout" help:"time one PostgreSQL connection attempt may take (TCP, TLS, authentication)"`
	// StartTimeout bounds how long `ferry serve` retries an unreachable
	// database at start.
	StartTimeout Duration `toml:"start_timeout" help:"how long ferry serve retries an unreachable database at start, with backoff, before it gives up; 0: until stopped (SIGTERM)"`
	// NodeHeartbeat is less than NodeTimeout.
	NodeHeartbeat Duration `toml:"node_heartbeat" help:"how often this server writes its heartbeat to the nodes table and looks for servers that are gone"`
	// NodeTimeout is more than NodeHeartbeat.
	NodeTimeout Duration `toml:"node_timeout" help:"how old another server's heartbeat may be before it is taken for gone and its quota reservations are released; several heartbeats, and more than the clocks of the servers differ"`
	// QuotaChunk is at least 0.
	QuotaChunk int64 `toml:"quota_chunk" help:"bytes an upload reserves of its user's quota at once, one database round trip each; 0: each write's own bytes"`
}

// Metrics is the [metrics] table.
type Metrics struct {
	// Listen serves /metrics; it must not be an FTP listener's address.
	Listen string `toml:"listen" flag:"metrics-listen" help:"host:port serving Prometheus metrics at /metrics (plain HTTP, no authentication: bind it to a private address); empty: no metrics"`
	// PerUser bounds the per-user series: the busiest users get them.
	PerUser int `toml:"per_user" flag:"metrics-per-user" help:"export per-user transfer bytes for this many of the busiest users, the others added up as user=\"(other)\"; 0: no per-user series; at most 1000"`
}

// VHost is one [[vhost]] table.
type VHost struct {
	Name   string `toml:"name" help:"host name a client sends with HOST; required and unique"`
	Banner string `toml:"banner" help:"greeting of this host; empty: the server's banner"`
}

// DefaultDatabaseURL is the database when neither --database,
// FERRY_DATABASE nor [database] url names one: the data directory's
// users.db, as before PostgreSQL support, so existing data directories keep
// their file.
const DefaultDatabaseURL = "sqlite:users.db"

// DatabaseEnv is the environment variable that names the database when
// --database does not (it is read by serve, user, ban and db commands).
const DatabaseEnv = "FERRY_DATABASE"

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
		DrainTimeout:     Duration{15 * time.Minute},
		UpgradeTimeout:   Duration{time.Minute},
		BackendTimeout:   Duration{30 * time.Second},
		MaxSessions:      2000,
		MaxSessionsPerIP: 50,
		MaxLoginFailures: 3,
		HashMaxSize:      4 << 30,
		HashPerUser:      1,
		BanThreshold:     20,
		BanWindow:        Duration{10 * time.Minute},
		BanDuration:      Duration{15 * time.Minute},
		FileUmask:        "022",
		DirUmask:         "022",
		TLSRequired:      "none",
		TLSMinVersion:    "1.2",
		TLSSessionReuse:  "required",
		ACMECA:           "https://acme-v02.api.letsencrypt.org/directory",
		ACMEChallenges:   []string{"http-01"},
		ACMEHTTPListen:   ":80",
		ACMETLSListen:    ":443",
		LogLevel:         "info",
		LogFormat:        "text",
		AuthLogFormat:    "ferry",
		Storage: Storage{
			Backend:             "local",
			S3Region:            "us-east-1",
			S3PartSize:          8 << 20,
			S3BufferBudget:      256 << 20,
			S3UploadConcurrency: 4,
			S3OrphanAge:         Duration{24 * time.Hour},
			S3Checksum:          "when_supported",
		},
		Database: Database{
			URL:              DefaultDatabaseURL,
			PoolSize:         10,
			StatementTimeout: Duration{10 * time.Second},
			ConnectTimeout:   Duration{5 * time.Second},
			NodeHeartbeat:    Duration{5 * time.Second},
			NodeTimeout:      Duration{30 * time.Second},
			QuotaChunk:       1 << 20,
		},
	}
}
