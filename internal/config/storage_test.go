package config

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// s3Config is a valid S3 configuration.
func s3Config() Config {
	c := Defaults()
	c.Storage.Backend = "s3"
	c.Storage.S3Bucket = "ferry-files"
	return c
}

// TestStorageS3Valid: the S3 forms Validate accepts.
func TestStorageS3Valid(t *testing.T) {
	for _, mod := range []func(*Storage){
		func(*Storage) {},
		func(s *Storage) { s.S3Endpoint = "http://127.0.0.1:7070" },
		func(s *Storage) { s.S3Endpoint = "https://acct.r2.cloudflarestorage.com"; s.S3Region = "auto" },
		func(s *Storage) { s.S3Endpoint = "https://s3.example.com/base/" },
		func(s *Storage) { s.S3Prefix = "ferry" },
		func(s *Storage) { s.S3Prefix = "site/ftp" },
		func(s *Storage) { s.S3PathStyle = true },
		func(s *Storage) { s.S3AccessKey, s.S3SecretKeyFile = "AKIA", "/etc/ferry/s3-secret" },
		func(s *Storage) { s.S3PartSize, s.S3BufferBudget = S3MinPartSize, S3MinPartSize },
		func(s *Storage) { s.S3PartSize, s.S3BufferBudget = S3MaxPartSize, S3MaxPartSize },
		func(s *Storage) { s.S3Checksum = "when_required" },
		func(s *Storage) { s.S3UploadConcurrency = 1 },
		func(s *Storage) { s.S3UploadConcurrency = S3MaxUploadConcurrency },
		func(s *Storage) { s.S3OrphanAge = Duration{time.Second} },
	} {
		c := s3Config()
		mod(&c.Storage)
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v", c.Storage, err)
		}
	}
}

// TestStorageS3Invalid: every malformed S3 setting is a problem naming its
// key.
func TestStorageS3Invalid(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Storage)
		want string
	}{
		{func(s *Storage) { s.S3Bucket = "" }, `storage.s3_bucket: must be set with backend "s3"`},
		{func(s *Storage) { s.S3Bucket = "a/b" }, `storage.s3_bucket: "a/b" is not a bucket name`},
		{func(s *Storage) { s.S3Bucket = "a b" }, `storage.s3_bucket: "a b" is not a bucket name`},
		{func(s *Storage) { s.S3Bucket = strings.Repeat("b", 256) }, `is not a bucket name`},
		{func(s *Storage) { s.S3Endpoint = "127.0.0.1:7070" }, `storage.s3_endpoint: "127.0.0.1:7070" is not an http:// or https:// URL`},
		{func(s *Storage) { s.S3Endpoint = "ftp://host" }, `storage.s3_endpoint: "ftp://host" is not an http`},
		{func(s *Storage) { s.S3Endpoint = "http://" }, `storage.s3_endpoint: "http://" is not an http`},
		{func(s *Storage) { s.S3Endpoint = "http://h/?x=1" }, `storage.s3_endpoint: "http://h/?…" is not an http`},
		{func(s *Storage) { s.S3Endpoint = "http://h/#x" }, `storage.s3_endpoint:`},
		{func(s *Storage) { s.S3Endpoint = "http://key:s3cret@h/" }, `storage.s3_endpoint: "http://key:xxxxx@h/" is not an http`},
		{func(s *Storage) { s.S3Endpoint = "http://h\x7f/" }, `storage.s3_endpoint: "http://h\x7f/" is not`},
		{func(s *Storage) { s.S3Region = "" }, `storage.s3_region: must be set`},
		{func(s *Storage) { s.S3Prefix = "/ferry" }, `storage.s3_prefix: "/ferry" is not a relative slash path`},
		{func(s *Storage) { s.S3Prefix = "ferry/" }, `storage.s3_prefix: "ferry/" is not`},
		{func(s *Storage) { s.S3Prefix = "a//b" }, `storage.s3_prefix: "a//b" is not`},
		{func(s *Storage) { s.S3Prefix = "a/../b" }, `storage.s3_prefix: "a/../b" is not`},
		{func(s *Storage) { s.S3Prefix = "." }, `storage.s3_prefix: "." is not`},
		{func(s *Storage) { s.S3Prefix = "a\nb" }, `storage.s3_prefix:`},
		{func(s *Storage) { s.S3AccessKey = "AKIA" }, `storage.s3_secret_key_file: must be set when s3_access_key is`},
		{func(s *Storage) { s.S3SecretKeyFile = "/etc/secret" }, `storage.s3_access_key: must be set when s3_secret_key_file is`},
		{func(s *Storage) { s.S3PartSize = S3MinPartSize - 1 }, `storage.s3_part_size: 5242879 is not between 5242880 (5 MiB) and 5368709120 (5 GiB)`},
		{func(s *Storage) { s.S3PartSize, s.S3BufferBudget = S3MaxPartSize+1, S3MaxPartSize+1 }, `storage.s3_part_size: 5368709121 is not between`},
		{func(s *Storage) { s.S3PartSize = 0 }, `storage.s3_part_size: 0 is not between`},
		{func(s *Storage) { s.S3BufferBudget = 8<<20 - 1 }, `storage.s3_buffer_budget: 8388607 is less than s3_part_size (8388608)`},
		{func(s *Storage) { s.S3UploadConcurrency = 0 }, `storage.s3_upload_concurrency: 0 is not between 1 and 64`},
		{func(s *Storage) { s.S3UploadConcurrency = -1 }, `storage.s3_upload_concurrency: -1 is not between 1 and 64`},
		{func(s *Storage) { s.S3UploadConcurrency = 65 }, `storage.s3_upload_concurrency: 65 is not between 1 and 64`},
		{func(s *Storage) { s.S3OrphanAge = Duration{} }, `storage.s3_orphan_age: 0s is not a positive duration`},
		{func(s *Storage) { s.S3OrphanAge = Duration{-time.Second} }, `storage.s3_orphan_age: -1s is not a positive duration`},
		{func(s *Storage) { s.S3Checksum = "always" }, `storage.s3_checksum: "always" is not one of when_supported, when_required`},
		{func(s *Storage) { s.S3Checksum = "" }, `storage.s3_checksum: "" is not one of`},
	} {
		c := s3Config()
		tc.mod(&c.Storage)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v): %v, want %q", c.Storage, err, tc.want)
		}
	}
}

// TestStorageS3KeysNeedS3: an s3_* key without backend "s3" is refused
// (a forgotten --storage s3 would otherwise serve the local disk).
func TestStorageS3KeysNeedS3(t *testing.T) {
	for key, mod := range map[string]func(*Storage){
		"s3_bucket":          func(s *Storage) { s.S3Bucket = "b" },
		"s3_endpoint":        func(s *Storage) { s.S3Endpoint = "http://h" },
		"s3_prefix":          func(s *Storage) { s.S3Prefix = "p" },
		"s3_path_style":      func(s *Storage) { s.S3PathStyle = true },
		"s3_access_key":      func(s *Storage) { s.S3AccessKey = "k" },
		"s3_secret_key_file": func(s *Storage) { s.S3SecretKeyFile = "f" },
	} {
		c := Defaults()
		mod(&c.Storage)
		want := `storage.` + key + `: set, but storage.backend is "local": add backend = "s3" (--storage s3) or remove it`
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s with local storage: %v, want %q", key, err, want)
		}
	}
}

// TestStorageFlags: the [storage] keys are flags of `ferry serve`; a flag
// overrides the file, and a problem names the flag or the file's line.
func TestStorageFlags(t *testing.T) {
	c, err := Resolve([]string{"--storage", "s3", "--s3-bucket", "b", "--s3-endpoint", "http://127.0.0.1:7070",
		"--s3-region", "eu-west-3", "--s3-prefix", "ftp", "--s3-path-style", "--s3-access-key", "AK",
		"--s3-secret-key-file", "/run/sk", "--s3-part-size", "16777216", "--s3-buffer-budget", "67108864",
		"--s3-upload-concurrency", "8", "--s3-orphan-age", "2h", "--s3-checksum", "when_required"}, "ferry serve", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Storage{Backend: "s3", S3Bucket: "b", S3Endpoint: "http://127.0.0.1:7070", S3Region: "eu-west-3",
		S3Prefix: "ftp", S3PathStyle: true, S3AccessKey: "AK", S3SecretKeyFile: "/run/sk", S3PartSize: 16 << 20,
		S3BufferBudget: 64 << 20, S3UploadConcurrency: 8, S3OrphanAge: Duration{2 * time.Hour}, S3Checksum: "when_required"}
	if !reflect.DeepEqual(c.Storage, want) {
		t.Errorf("flags: %+v\nwant %+v", c.Storage, want)
	}

	file := writeFile(t, "banner = \"x\"\n[storage]\nbackend = \"s3\"\ns3_bucket = \"from-file\"\ns3_part_size = 1\n")
	c, err = Resolve([]string{"--config", file, "--s3-bucket", "from-flag", "--s3-part-size", "5242880"}, "ferry serve", io.Discard)
	if err != nil || c.Storage.S3Bucket != "from-flag" || c.Storage.Backend != "s3" || c.Storage.S3PartSize != 5<<20 {
		t.Errorf("flags over the file: %+v, %v", c.Storage, err)
	}
	_, err = Resolve([]string{"--config", file}, "ferry serve", io.Discard)
	if err == nil || !strings.Contains(err.Error(), file+":5: storage.s3_part_size: 1 is not between") {
		t.Errorf("a bad key in the file: %v, want its line", err)
	}
	_, err = Resolve([]string{"--config", file, "--s3-part-size", "2"}, "ferry serve", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--s3-part-size: storage.s3_part_size: 2 is not between") {
		t.Errorf("a bad flag: %v, want it named", err)
	}
	_, err = Resolve([]string{"--storage", "ceph"}, "ferry serve", io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--storage: storage.backend: "ceph" is not one of local, s3`) {
		t.Errorf("--storage ceph: %v", err)
	}
	_, err = Resolve([]string{"--s3-bucket", "b"}, "ferry serve", io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--s3-bucket: storage.s3_bucket: set, but storage.backend is "local"`) {
		t.Errorf("--s3-bucket without --storage s3: %v", err)
	}
	for _, bad := range [][]string{{"--s3-part-size", "8MiB"}, {"--s3-orphan-age", "1day"}, {"--s3-path-style=maybe"}} {
		if _, err := Resolve(bad, "ferry serve", io.Discard); err == nil {
			t.Errorf("Resolve(%q) accepted", bad)
		}
	}

	var usage strings.Builder
	Resolve([]string{"-h"}, "ferry serve", &usage)
	for _, f := range []string{"--storage string", "--s3-bucket string", "--s3-path-style\n", "--s3-part-size int", "--s3-orphan-age duration"} {
		if !strings.Contains(usage.String(), f) {
			t.Errorf("usage lacks %q", f)
		}
	}
	if !strings.Contains(usage.String(), "(the storage.s3_bucket key)") {
		t.Errorf("usage does not say which key --s3-bucket sets:\n%s", usage.String())
	}
}

// TestStorageFlagsRoundTrip sets each [storage] flag to a value other than
// its default and checks the key.
func TestStorageFlagsRoundTrip(t *testing.T) {
	n := 0
	for _, f := range flagFields() {
		if f.table < 0 || !strings.HasPrefix(f.path, "storage.") {
			continue
		}
		n++
		if want := "s3-" + strings.TrimPrefix(strings.ReplaceAll(f.key, "_", "-"), "s3-"); f.key != "backend" && f.flag != want {
			t.Errorf("key %s has flag %q, want %q", f.path, f.flag, want)
		}
		c := Defaults()
		v := f.value(&c)
		var arg string
		switch f.kind {
		case kindString:
			arg = "v-" + f.key
		case kindBool:
			arg = "true"
		case kindInt, kindInt64:
			arg = "123456789"
		case kindDuration:
			arg = "7m"
		}
		if _, err := Resolve([]string{"--" + f.flag + "=" + arg}, "ferry serve", io.Discard); err != nil && strings.Contains(err.Error(), "flag") && !strings.Contains(err.Error(), "--"+f.flag+":") {
			t.Errorf("--%s: %v", f.flag, err)
		}
		fl := &flagValue{f: f, v: v}
		if err := fl.Set(arg); err != nil {
			t.Fatal(err)
		}
		if got := fl.String(); got != arg {
			t.Errorf("--%s=%s reads back %q", f.flag, arg, got)
		}
	}
	if n != reflect.TypeFor[Storage]().NumField() {
		t.Errorf("%d [storage] keys are flags, want all %d", n, reflect.TypeFor[Storage]().NumField())
	}
}

// TestExampleShowsStorageFlags: the example file names each [storage]
// key's flag and loads back to the defaults.
func TestExampleShowsStorageFlags(t *testing.T) {
	ex := Example()
	for _, f := range []string{"(flag --storage)", "(flag --s3-bucket)", "(flag --s3-checksum)"} {
		if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(ex, "#", "")), " "), f) {
			t.Errorf("example lacks %q", f)
		}
	}
	c := Defaults()
	if err := Load(writeFile(t, ex), &c); err != nil || !reflect.DeepEqual(c, Defaults()) {
		t.Errorf("example loads to %+v, %v", c.Storage, err)
	}
}
