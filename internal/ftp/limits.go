package ftp

import (
	"github.com/ferryftp/ferry/internal/quota"
	"github.com/ferryftp/ferry/internal/rate"
	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/users"
)

// userRates are the rate limiters that the sessions of one user share.
// Quota usage is kept apart (Server.quotas), so a rate change never splits it.
type userRates struct {
	up, down *rate.Limiter
}

// userRates returns the shared limiters of a user; a login with other rates
// than the user's last one gets new limiters.
func (srv *Server) userRates(u *users.User) *userRates {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.rates == nil {
		srv.rates = map[string]*userRates{}
	}
	r := srv.rates[u.Name]
	if r == nil || r.up.Rate() != u.UploadRate || r.down.Rate() != u.DownloadRate {
		r = &userRates{up: rate.New(u.UploadRate), down: rate.New(u.DownloadRate)}
		srv.rates[u.Name] = r
	}
	return r
}

// withQuota wraps a named user's storage in the user's quota accounting
// (package quota). The usage is shared by the user's sessions and counted
// once, in the background, from the first login with a quota; the session's
// first counting operation waits for that count. A login without a quota
// forgets the usage, so a quota set later counts afresh.
func (srv *Server) withQuota(st *Site, fsys storage.FS, u *users.User) storage.FS {
	if u.QuotaBytes <= 0 && u.QuotaFiles <= 0 {
		srv.quotas.Forget(u.Name, u.Home)
		return fsys
	}
	usage := srv.quotas.Get(u.Name, u.Home)
	home := u.Home
	usage.Load(srv.background, func() (storage.FS, error) { return st.Storage.Open(srv.background, home) })
	return quota.Wrap(fsys, usage, quota.Limits{Bytes: u.QuotaBytes, Files: u.QuotaFiles})
}
