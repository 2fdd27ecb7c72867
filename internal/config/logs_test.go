package config

import (
	"io"
	"strings"
	"testing"
)

// TestMetricsAndLogKeys: --metrics-listen and --metrics-per-user set the
// [metrics] keys over the file; the logs' keys are flags; bad values are
// refused with the key named.
func TestMetricsAndLogKeys(t *testing.T) {
	path := writeFile(t, "[metrics]\nlisten = \"127.0.0.1:9100\"\nper_user = 3\n")
	c, err := Resolve([]string{"--config", path}, "ferry serve", io.Discard)
	if err != nil || c.Metrics.Listen != "127.0.0.1:9100" || c.Metrics.PerUser != 3 {
		t.Fatalf("file: %+v, %v", c.Metrics, err)
	}
	c, err = Resolve([]string{"--config", path, "--metrics-listen", "127.0.0.1:9200", "--metrics-per-user=7",
		"--xferlog", "/var/log/ferry/xferlog", "--auth-log", "/var/log/ferry/auth.log", "--auth-log-format", "vsftpd"}, "ferry serve", io.Discard)
	if err != nil || c.Metrics.Listen != "127.0.0.1:9200" || c.Metrics.PerUser != 7 ||
		c.Xferlog != "/var/log/ferry/xferlog" || c.AuthLog != "/var/log/ferry/auth.log" || c.AuthLogFormat != "vsftpd" {
		t.Fatalf("flags: %+v %q %q %q, %v", c.Metrics, c.Xferlog, c.AuthLog, c.AuthLogFormat, err)
	}
	if d := Defaults(); d.Metrics.Listen != "" || d.Xferlog != "" || d.AuthLog != "" || d.AuthLogFormat != "ferry" {
		t.Errorf("defaults: metrics %+v, xferlog %q, auth log %q %q", d.Metrics, d.Xferlog, d.AuthLog, d.AuthLogFormat)
	}

	for _, tc := range []struct {
		mod  func(*Config)
		want string // "" for valid
	}{
		{func(c *Config) { c.Metrics.Listen = "127.0.0.1:9100" }, ""},
		{func(c *Config) { c.Metrics.Listen = ":2122" }, ""},
		{func(c *Config) { c.Metrics.Listen = ":2121" }, `metrics.listen: ":2121" is also listen`},
		{func(c *Config) { c.Metrics.Listen = "127.0.0.1:2121" }, `metrics.listen: "127.0.0.1:2121" is also listen`},
		{func(c *Config) { c.Listen = "127.0.0.1:21"; c.Metrics.Listen = "127.0.0.2:21" }, ""},
		{func(c *Config) { c.ImplicitTLSListen = "[::]:990"; c.Metrics.Listen = "127.0.0.1:990" }, `metrics.listen: "127.0.0.1:990" is also implicit_tls_listen`},
		{func(c *Config) { c.Listen = "127.0.0.1:0"; c.Metrics.Listen = "127.0.0.1:0" }, ""},
		{func(c *Config) { c.Metrics.Listen = "9100" }, `metrics.listen: "9100" is not host:port`},
		{func(c *Config) { c.Metrics.PerUser = -1 }, `metrics.per_user: -1 is not between 0 and 1000`},
		{func(c *Config) { c.Metrics.PerUser = 1001 }, `metrics.per_user: 1001 is not between 0 and 1000`},
		{func(c *Config) { c.AuthLogFormat = "syslog" }, `auth_log_format: "syslog" is not one of ferry, vsftpd`},
		{func(c *Config) { c.Xferlog, c.AuthLog = "/x", "/x" }, `auth_log: "/x" is also xferlog`},
	} {
		c := Defaults()
		tc.mod(&c)
		err := c.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate: %v, want none", err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate: %v, want %q", err, tc.want)
		}
	}
	if _, err := Resolve([]string{"--metrics-per-user=x"}, "ferry serve", io.Discard); err == nil {
		t.Error("--metrics-per-user=x accepted")
	}
}
