//go:build race

package ftp

// raceDetector reports whether the test binary was built with -race.
const raceDetector = true
