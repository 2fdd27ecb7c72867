package mem_test

import (
	"testing"

	"github.com/ferryftp/ferry/internal/storage"
	"github.com/ferryftp/ferry/internal/storage/mem"
	"github.com/ferryftp/ferry/internal/storage/storagetest"
)

// TestConformance runs the storage suite on the in-memory backend.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (storage.FS, string) { return mem.New(), "" })
}

// TestConformanceNoCaps runs the suite on a backend that can neither write
// in place nor set times or modes, as an object store.
func TestConformanceNoCaps(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) (storage.FS, string) {
		m := mem.New()
		m.Caps = 0
		return m, ""
	})
}
