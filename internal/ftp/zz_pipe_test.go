package ftp

import (
	"path/filepath"
	"testing"
)

func TestZZPipelineOrder(t *testing.T) {
	ts := startServer(t, nil)
	writeFile(t, filepath.Join(ts.home, "f.txt"), []byte("hello"))
	c := loggedIn(t, ts)
	bad := 0
	for i := 0; i < 200; i++ {
		d := c.pasv()
		c.sendRaw("RETR f.txt\r\nNOOP\r\n")
		first, _ := c.read()
		readAll(t, d)
		second, _ := c.read()
		third, _ := c.read()
		if first != 150 {
			bad++
			t.Logf("iteration %d: %d %d %d", i, first, second, third)
		}
	}
	t.Logf("bad %d/200", bad)
}
