package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestTablesLoad sets every key of every table from a file.
func TestTablesLoad(t *testing.T) {
	src := `banner = "hi"

[storage]
backend = "local"

[database]
url = "sqlite:/var/lib/ferry/users.db"

[metrics]
listen = ""

[[vhost]]
name = "a.example.com"
banner = "A"

[[vhost]]
name = "b.example.com"
`
	c := Defaults()
	if err := Load(writeFile(t, src), &c); err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Banner = "hi"
	want.Database.URL = "sqlite:/var/lib/ferry/users.db"
	want.VHosts = []VHost{{Name: "a.example.com", Banner: "A"}, {Name: "b.example.com"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v %+v %+v %+v, want %+v %+v %+v %+v", c.Storage, c.Database, c.Metrics, c.VHosts,
			want.Storage, want.Database, want.Metrics, want.VHosts)
	}
	// Inline forms are tables too.
	c = Defaults()
	if err := Load(writeFile(t, "vhost = [{name = \"a.example.com\"}]\nstorage = {backend = \"local\"}\n"), &c); err != nil ||
		len(c.VHosts) != 1 || c.VHosts[0].Name != "a.example.com" {
		t.Errorf("inline tables: %v, %+v", err, c.VHosts)
	}
	// A table that leaves a key out keeps its default.
	c = Defaults()
	if err := Load(writeFile(t, "[database]\n"), &c); err != nil || c.Database.URL != DefaultDatabaseURL {
		t.Errorf("empty [database]: %v, url %q", err, c.Database.URL)
	}
}

// TestTablesStrict: unknown keys inside tables, values of the wrong type and
// a table written as a plain key are errors naming the key and its line.
func TestTablesStrict(t *testing.T) {
	src := `listen = ":21"
[storage]
backend = "local"
backnd = "s3"

[database]
url = 7

[[vhost]]
name = "a.example.com"

[[vhost]]
# second
name = "b.example.com"
banr = "x"
`
	c := Defaults()
	err := Load(writeFile(t, src), &c)
	for _, want := range []string{
		`ferry.toml:4: unknown key "storage.backnd" (did you mean "backend"?)`,
		`ferry.toml:7: database.url: want a string, got integer 7`,
		`ferry.toml:15: unknown key "vhost[2].banr" (did you mean "banner"?)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load: %v\nwant a line %q", err, want)
		}
	}
	if c.Listen != Defaults().Listen {
		t.Error("Load changed c despite errors")
	}
	for src, want := range map[string]string{
		`storage = "local"`:               `ferry.toml:1: storage: want a table [storage], got string "local"`,
		"[[storage]]\nx = 1\n":            `storage: want a table [storage], got an array`,
		"[vhost]\nname = \"a\"\n":         `vhost: want an array of tables [[vhost]], got a table`,
		"[storag]\nbackend = \"local\"\n": `unknown key "storag" (did you mean "storage"?)`,
	} {
		c := Defaults()
		err := Load(writeFile(t, src), &c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%q): %v\nwant %q", src, err, want)
		}
	}
}

// TestTablesValidate checks what Validate says about each table, with the
// lines Check finds.
func TestTablesValidate(t *testing.T) {
	src := `[storage]
backend = "ceph"

[database]
url = "mysql://db/ferry"

[metrics]
listen = ":2121"

[[vhost]]
name = "a.example.com"

[[vhost]]
name = "A.example.com"
banner = "two\nlines"

[[vhost]]
name = "not a host"
`
	_, err := Check(writeFile(t, src))
	for _, want := range []string{
		`ferry.toml:2: storage.backend: "ceph" is not one of local, s3`,
		`ferry.toml:5: database.url: "mysql://db/ferry" is neither sqlite:PATH nor a PostgreSQL url`,
		`ferry.toml:8: metrics.listen: ":2121" is also listen: metrics need a port of their own`,
		`ferry.toml:14: vhost[2].name: "A.example.com" is also the name of vhost[1]`,
		`ferry.toml:15: vhost[2].banner: must not contain CR, LF or NUL`,
		`ferry.toml:18: vhost[3].name: "not a host" is not a host name`,
		`ferry.toml:10: vhost[1]: virtual hosts are not supported yet: remove the [[vhost]] tables`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v\nwant a line %q", err, want)
		}
	}
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("Check's error holds no *Problem: %v", err)
	}

	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Metrics.Listen = "nowhere" }, `metrics.listen: "nowhere" is not host:port`},
		{func(c *Config) { c.Database.URL = "sqlite:" }, `database.url: "sqlite:" is not sqlite:PATH`},
		{func(c *Config) { c.Database.URL = "mysql://ferry:hunter2@db/ferry" }, `database.url: "mysql://ferry:xxxxx@db/ferry" is neither`},
		{func(c *Config) { c.Database.PoolSize = 0 }, `database.pool_size: must be at least 1`},
		{func(c *Config) { c.Database.StatementTimeout.Duration = 0 }, `database.statement_timeout: must be positive`},
		{func(c *Config) { c.Database.ConnectTimeout.Duration = -1 }, `database.connect_timeout: must be positive`},
		{func(c *Config) { c.Database.StartTimeout.Duration = -1 }, `database.start_timeout: must not be negative`},
		{func(c *Config) { c.Database.NodeHeartbeat.Duration = 0 }, `database.node_heartbeat: must be positive`},
		{func(c *Config) { c.Database.NodeTimeout.Duration = c.Database.NodeHeartbeat.Duration }, `database.node_timeout: 5s must exceed node_heartbeat (5s)`},
		{func(c *Config) { c.Database.QuotaChunk = -1 }, `database.quota_chunk: must not be negative`},
		{func(c *Config) { c.VHosts = []VHost{{}} }, `vhost[1].name: must be set`},
	} {
		c := Defaults()
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate: %v, want %q", err, tc.want)
		}
	}
	if p, err := (Database{URL: "sqlite:x/users.db"}).SQLitePath(); p != "x/users.db" || err != nil {
		t.Errorf("SQLitePath = %q, %v", p, err)
	}
}

// TestTablesAreNotFlags: tables are set only in the file, but for the keys
// of [storage], which are flags too (TestStorageFlags).
func TestTablesAreNotFlags(t *testing.T) {
	for _, arg := range []string{"--metrics=x", "--listen-metrics=x", "--vhost=x", "--backend=s3", "--s3_bucket=b"} {
		_, err := Resolve([]string{arg}, "ferry serve", nil)
		if err == nil || !strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("Resolve(%s): %v", arg, err)
		}
	}
	var usage strings.Builder
	Resolve([]string{"-h"}, "ferry serve", &usage)
	if strings.Contains(usage.String(), "--metrics ") || strings.Contains(usage.String(), "--metrics\n") || strings.Contains(usage.String(), "--vhost") {
		t.Errorf("usage lists a table as a flag:\n%s", usage.String())
	}
	// Resolve reports problems of table keys with their file and line.
	path := writeFile(t, "\n[metrics]\nlisten = \"nowhere\"\n")
	_, err := Resolve([]string{"--config", path}, "ferry serve", nil)
	if err == nil || !strings.Contains(err.Error(), path+":3: metrics.listen:") {
		t.Errorf("Resolve: %v", err)
	}
}

// TestDatabaseFlag: --database sets the [database] url over the file, and
// its problems name the flag.
func TestDatabaseFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(file, []byte("[database]\nurl = \"sqlite:from-file.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Resolve([]string{"--config", file}, "ferry serve", io.Discard)
	if err != nil || c.Database.URL != "sqlite:from-file.db" {
		t.Fatalf("file only: %q, %v", c.Database.URL, err)
	}
	c, err = Resolve([]string{"--config", file, "--database", "sqlite:/var/lib/ferry/users.db"}, "ferry serve", io.Discard)
	if err != nil || c.Database.URL != "sqlite:/var/lib/ferry/users.db" {
		t.Fatalf("--database over the file: %q, %v", c.Database.URL, err)
	}
	_, err = Resolve([]string{"--database", "mysql://db/ferry"}, "ferry serve", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--database: database.url:") {
		t.Errorf("--database mysql://: %v", err)
	}
	for _, url := range []string{
		"postgres://ferry:pw@127.0.0.1:5432/ferry?sslmode=disable",
		"postgresql://db.example.com/ferry?sslmode=verify-full",
		"host=127.0.0.1 port=5432 user=ferry dbname=ferry sslmode=require",
	} {
		if c, err := Resolve([]string{"--database", url}, "ferry serve", io.Discard); err != nil || c.Database.URL != url {
			t.Errorf("--database %s: %q, %v", url, c.Database.URL, err)
		}
	}
	var usage strings.Builder
	Resolve([]string{"-h"}, "ferry serve", &usage)
	if !strings.Contains(usage.String(), "--database URL") {
		t.Errorf("usage lacks --database:\n%s", usage.String())
	}
}

// TestDatabaseEnv: FERRY_DATABASE names the database over the file and
// under --database; its problems say where the value came from.
func TestDatabaseEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ferry.toml")
	if err := os.WriteFile(file, []byte("[database]\nurl = \"sqlite:from-file.db\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(DatabaseEnv, "postgres://ferry:pw@db/ferry")
	c, err := Resolve([]string{"--config", file}, "ferry serve", io.Discard)
	if err != nil || c.Database.URL != "postgres://ferry:pw@db/ferry" {
		t.Errorf("env over the file: %q, %v", c.Database.URL, err)
	}
	c, err = Resolve([]string{"--config", file, "--database", "sqlite:flag.db"}, "ferry serve", io.Discard)
	if err != nil || c.Database.URL != "sqlite:flag.db" {
		t.Errorf("flag over env: %q, %v", c.Database.URL, err)
	}
	t.Setenv(DatabaseEnv, "mysql://u:s3cret@db/ferry")
	_, err = Resolve(nil, "ferry serve", io.Discard)
	if err == nil || !strings.Contains(err.Error(), DatabaseEnv+": database.url:") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("bad FERRY_DATABASE: %v", err)
	}
	t.Setenv(DatabaseEnv, "")
	if c, err := Resolve(nil, "ferry serve", io.Discard); err != nil || c.Database.URL != DefaultDatabaseURL {
		t.Errorf("empty env: %q, %v", c.Database.URL, err)
	}
}

// TestDatabaseURLRedacted: no message about [database] url holds its
// password, wherever the url keeps it. The inputs were found by
// FuzzDatabaseURL: the password of a url that is not postgres:// (other
// schemes, an upper-case one) and one in the query went out whole.
func TestDatabaseURLRedacted(t *testing.T) {
	for _, tt := range []struct{ url, shown string }{
		{"postgres://u:s3cret@h/db", `"postgres://u:xxxxx@h/db"`},
		{"postgres://u@h/db?sslmode=require&password=s3cret", `"postgres://u@h/db?…"`},
		{"mysql://u:s3cret@h/db", `"mysql://u:xxxxx@h/db"`},
		{"Postgres://u:s3cret@h", `"postgres://u:xxxxx@h"`},
		{"postgres://u:s3 cret@h/db", `"(unparsable url)"`},
		{"u:s3cret@tcp(h)/db", `"u:…"`},
		{"mysql:u:s3cret@h", `"mysql:…"`},
		{"host=h password=s3cret", `"(hidden: not a url)"`},
		{"postgres://h/db#s3cret", `"postgres://h/db#…"`},
		{"users.db", `"users.db"`},
	} {
		_, err := Database{URL: tt.url}.SQLitePath()
		if err == nil || strings.Contains(err.Error(), "s3") || !strings.Contains(err.Error(), tt.shown) {
			t.Errorf("SQLitePath(%q): %v, want it to show %s and no password", tt.url, err, tt.shown)
		}
	}
}
