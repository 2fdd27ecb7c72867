package users

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// waiting returns how many acquires wait on v.
func (v *Verifier) waiting() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.wait.Len()
}

// waitFor blocks until n acquires wait on v; acquire queues before it
// blocks, so this is a readiness signal, not a sleep.
func waitFor(t *testing.T, v *Verifier, n int) {
	t.Helper()
	for v.waiting() != n {
		select {
		case <-t.Context().Done():
			t.Fatal("timed out")
		default:
		}
		// Let the acquiring goroutine run.
		runtime.Gosched()
	}
}

func TestVerifierBudget(t *testing.T) {
	v := NewVerifier(100)
	ctx := t.Context()
	if err := v.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { v.acquire(ctx, 60); done <- struct{}{} }()
	waitFor(t, v, 1)
	// First come, first served: a small check queues behind the big one
	// although it would fit.
	go func() { v.acquire(ctx, 30); done <- struct{}{} }()
	for v.waiting() != 2 {
		select {
		case <-done:
			t.Fatal("the small check overtook the big one")
		default:
			runtime.Gosched()
		}
	}
	v.release(60)
	<-done
	<-done
	if v.used != 90 {
		t.Fatalf("used %d; want 90", v.used)
	}
	v.release(60)
	v.release(30)
	// A cost above the budget runs alone.
	if err := v.acquire(ctx, 1000); err != nil || v.used != 100 {
		t.Fatalf("acquire(1000) = %v, used %d", err, v.used)
	}
	v.release(1000)
	if v.used != 0 {
		t.Fatalf("used %d after all releases", v.used)
	}
}

func TestVerifierBusy(t *testing.T) {
	v := NewVerifier(100)
	if err := v.acquire(t.Context(), 100); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- v.acquire(ctx, 50) }()
	waitFor(t, v, 1)
	later := make(chan error, 1)
	go func() { later <- v.acquire(t.Context(), 50) }()
	waitFor(t, v, 2)
	cancel()
	if err := <-errc; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire = %v; want ErrBusy and context.Canceled", err)
	}
	if n := v.waiting(); n != 1 {
		t.Fatalf("%d waiters after the cancel; want 1", n)
	}
	v.release(100)
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	if v.used != 50 {
		t.Fatalf("used %d; want 50", v.used)
	}
	// Verify and VerifyDummy wait in the same queue.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	v.acquire(t.Context(), 50)
	if _, err := v.Verify(ctx, dummyHash, "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("Verify with the budget taken = %v; want ErrBusy", err)
	}
	if err := v.VerifyDummy(ctx, "x"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy with the budget taken = %v; want ErrBusy", err)
	}
}

func TestHashMemory(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hash string
		want int64
	}{
		{h, 19456 << 10},
		{dummyHash, 19456 << 10},
		{"$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$" + strings.Repeat("A", 43), 64 << 20},
		{"$2a$04$" + strings.Repeat("a", 53), bcryptMemory},
		{"plain", 0},
		{"$argon2id$broken", 0},
	} {
		if got := hashMemory(tc.hash); got != tc.want {
			t.Errorf("hashMemory(%.30q) = %d; want %d", tc.hash, got, tc.want)
		}
	}
}

// TestLoginRules: every refusal wraps ErrAuth with its reason, and the
// account's rules are applied before the password is looked at (a stored
// hash that cannot be used shows whether it was).
func TestLoginRules(t *testing.T) {
	v := NewVerifier(0)
	good, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	const broken = "$argon2id$broken"
	leaf := func(cn string) *x509.Certificate { return &x509.Certificate{Subject: pkix.Name{CommonName: cn}} }
	on := &tls.ConnectionState{Version: tls.VersionTLS13}
	for _, tc := range []struct {
		name   string
		u      *User
		hash   string
		req    LoginRequest
		reason string // "" for success
	}{
		{"ok", &User{Name: "a"}, good, LoginRequest{Name: "a", Password: "right"}, ""},
		{"wrong", &User{Name: "a"}, good, LoginRequest{Name: "a", Password: "wrong"}, "wrong password"},
		{"unknown", nil, "", LoginRequest{Name: "a", Password: "right"}, "unknown user"},
		{"bad hash", &User{Name: "a"}, broken, LoginRequest{Name: "a", Password: "right"}, "stored password hash"},
		{"disabled", &User{Name: "a", Disabled: true}, broken, LoginRequest{Name: "a", Password: "right"}, "account disabled"},
		{"tls control", &User{Name: "a", TLSRequired: "control"}, broken, LoginRequest{Name: "a", Password: "right"}, "user requires TLS"},
		{"tls all", &User{Name: "a", TLSRequired: "all"}, broken, LoginRequest{Name: "a", Password: "right"}, "user requires TLS"},
		{"tls data", &User{Name: "a", TLSRequired: "data"}, good, LoginRequest{Name: "a", Password: "right"}, ""},
		{"tls on", &User{Name: "a", TLSRequired: "all"}, good, LoginRequest{Name: "a", Password: "right", TLS: on}, ""},
		{"no cert", &User{Name: "a", CertRequired: true}, broken, LoginRequest{Name: "a", Password: "right", TLS: on}, "user requires a client certificate"},
		{"other cert", &User{Name: "a", CertRequired: true}, broken, LoginRequest{Name: "a", Password: "right", TLS: on, Cert: leaf("b")}, "user requires a client certificate"},
		{"cert", &User{Name: "a", CertRequired: true}, good, LoginRequest{Name: "a", Password: "right", TLS: on, Cert: leaf("a")}, ""},
	} {
		u, err := v.Login(t.Context(), tc.req, tc.u, tc.hash)
		switch {
		case tc.reason == "" && (err != nil || u != tc.u):
			t.Errorf("%s: Login = %v, %v; want the user", tc.name, u, err)
		case tc.reason != "" && (u != nil || !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), tc.reason)):
			t.Errorf("%s: Login = %v, %v; want ErrAuth: %s", tc.name, u, err, tc.reason)
		}
	}
}

type fakeLookup map[string]User

func (f fakeLookup) Get(_ context.Context, name string) (*User, error) {
	u, ok := f[name]
	if !ok {
		return nil, ErrNotFound
	}
	return &u, nil
}

func TestCertLogin(t *testing.T) {
	l := fakeLookup{
		"bob":   {Name: "bob", CertLogin: true},
		"carol": {Name: "carol"},
		"dave":  {Name: "dave", CertLogin: true, Disabled: true},
	}
	cert := func(cn string, email ...string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, EmailAddresses: email}
	}
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		ok   bool
	}{
		{"bob", cert("bob"), true},
		{"bob", cert("x", "bob"), true},
		{"bob", cert("mallory"), false},
		{"bob", nil, false},
		{"carol", cert("carol"), false},
		{"dave", cert("dave"), false},
		{"nobody", cert("nobody"), false},
	} {
		u, err := CertLogin(t.Context(), l, LoginRequest{Name: tc.name, Cert: tc.cert})
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrAuth)) || (tc.ok && u.Name != tc.name) {
			t.Errorf("CertLogin(%s, %v) = %v, %v; want ok=%v", tc.name, tc.cert != nil, u, err, tc.ok)
		}
	}
}

// TestLoginEveryPathWaits: every outcome of Login, refusals without a
// password check included, passes through the budget: with the budget held
// and the context ended, each gets ErrBusy instead of its answer. So none is
// faster than a password check, whatever the reason.
func TestLoginEveryPathWaits(t *testing.T) {
	v := NewVerifier(int64(hashParams.memory) << 10) // one check of a new hash
	good, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.acquire(t.Context(), int64(hashParams.memory)<<10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, tc := range map[string]struct {
		u   *User
		req LoginRequest
	}{
		"right":    {&User{Name: "a"}, LoginRequest{Name: "a", Password: "right"}},
		"wrong":    {&User{Name: "a"}, LoginRequest{Name: "a", Password: "wrong"}},
		"unknown":  {nil, LoginRequest{Name: "a", Password: "right"}},
		"disabled": {&User{Name: "a", Disabled: true}, LoginRequest{Name: "a", Password: "right"}},
		"tls":      {&User{Name: "a", TLSRequired: "control"}, LoginRequest{Name: "a", Password: "right"}},
		"cert":     {&User{Name: "a", CertRequired: true}, LoginRequest{Name: "a", Password: "right"}},
	} {
		if _, err := v.Login(ctx, tc.req, tc.u, good); !errors.Is(err, ErrBusy) || errors.Is(err, ErrAuth) {
			t.Errorf("%s: Login with the budget held = %v; want ErrBusy", name, err)
		}
	}
}

// TestDefaultHashMemory: the default budget is one check of a new hash
// (19 MiB) per processor, never below one check nor above 256 MiB, and is
// what a Verifier given no budget gets.
func TestDefaultHashMemory(t *testing.T) {
	const check = 19456 << 10 // hashParams.memory, in bytes
	for _, tc := range []struct {
		procs int
		want  int64
	}{
		{0, check},
		{1, check},
		{2, 2 * check},
		{4, 4 * check},
		{13, 13 * check},
		{14, 256 << 20}, // 14 checks would be 266 MiB
		{64, 256 << 20},
	} {
		if got := hashMemoryFor(tc.procs); got != tc.want {
			t.Errorf("hashMemoryFor(%d) = %d, want %d", tc.procs, got, tc.want)
		}
	}
	want := hashMemoryFor(runtime.GOMAXPROCS(0))
	if got := DefaultHashMemory(); got != want {
		t.Errorf("DefaultHashMemory() = %d, want %d", got, want)
	}
	// Beside S3's part buffers: two checks at most, on any machine.
	for _, procs := range []int{1, 2, 3, 16} {
		old := runtime.GOMAXPROCS(procs)
		got := DefaultHashMemoryBeside()
		runtime.GOMAXPROCS(old)
		if w := int64(min(procs, 2)) * check; got != w {
			t.Errorf("GOMAXPROCS %d: DefaultHashMemoryBeside() = %d, want %d", procs, got, w)
		}
	}
	for _, b := range []int64{0, -1} {
		if got := NewVerifier(b).Budget(); got != want {
			t.Errorf("NewVerifier(%d).Budget() = %d, want %d", b, got, want)
		}
	}
	if got := DefaultVerifier().Budget(); got != want {
		t.Errorf("DefaultVerifier().Budget() = %d, want %d", got, want)
	}
}
