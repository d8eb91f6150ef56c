// Package e2e holds examhall's whole-system tests: a real node (built by
// cmd/examhall/internal/app, as the binary builds it) on loopback with
// real websockets, WebRTC from pion publishers and from Chromium and
// Firefox with fake cameras, PostgreSQL and SQLite, and S3 object storage.
// The tests whose names hold Chromium, Firefox or Cluster are the slow
// ones; make test runs them at full speed after the race-detector pass.
package e2e
