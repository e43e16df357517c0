// Package pgtest starts a throwaway PostgreSQL server for tests: initdb and
// pg_ctl on a free loopback port, run as an unprivileged user when the
// tests run as root (PostgreSQL refuses to run as root). It is test
// support only; production code must not import it.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway PostgreSQL.
type Server struct {
	Host    string // 127.0.0.1
	Port    int
	Dir     string // data and socket directory
	BinDir  string
	runAs   *user.User // nil when not root
	stopped bool
}

// AppUser and AppPassword are the non-superuser role that Start creates
// (with SCRAM password authentication over TCP); AppDatabase its database.
const (
	AppUser     = "warden_app"
	AppPassword = "app-secret-pw"
	AppDatabase = "app"
)

// FindBinDir returns the directory holding initdb/pg_ctl/postgres.
func FindBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
		return filepath.Dir(p), nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	return "", errors.New("pgtest: PostgreSQL server binaries (initdb, pg_ctl) not found; install the postgresql package")
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Options tune Start. The zero value is what tests want.
type Options struct {
	MaxConnections int // default 300
}

// Start initialises and starts a server, creates AppUser/AppDatabase, and
// returns once it accepts connections. Call Stop when done.
func Start(ctx context.Context) (*Server, error) { return StartWith(ctx, Options{}) }

// StartWith is Start with options.
func StartWith(ctx context.Context, o Options) (_ *Server, err error) {
	if o.MaxConnections <= 0 {
		o.MaxConnections = 300
	}
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{Host: "127.0.0.1", BinDir: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtest: running as root needs the postgres system user: %w", err)
		}
		s.runAs = u
	}
	s.Dir, err = os.MkdirTemp("", "warden-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	if err := os.Chmod(s.Dir, 0o755); err != nil {
		return nil, err
	}
	if s.runAs != nil {
		uid, _ := strconv.Atoi(s.runAs.Uid)
		gid, _ := strconv.Atoi(s.runAs.Gid)
		if err := os.Chown(s.Dir, uid, gid); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	data := filepath.Join(s.Dir, "data")
	if out, err := s.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	hba := "local all all trust\n" +
		"host all postgres 127.0.0.1/32 trust\n" +
		"host all all 127.0.0.1/32 scram-sha-256\n" +
		"host all all ::1/128 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(data, "pg_hba.conf"), []byte(hba), 0o644); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 5; attempt++ {
		s.Port, err = FreePort()
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=%d -c shared_buffers=64MB", s.Port, s.Dir, o.MaxConnections)
		var out []byte
		out, err = s.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(s.Dir, "log"), "-o", opts, "-w", "-t", "60", "start")
		if err == nil {
			break
		}
		log, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
		err = fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
		if !strings.Contains(string(log), "already in use") {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	setup := []string{
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", AppUser, AppPassword),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", AppDatabase, AppUser),
	}
	for _, q := range setup {
		if err := s.Exec(ctx, "postgres", q); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// run runs a PostgreSQL binary as the unprivileged user.
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, name), args...)
	if s.runAs != nil {
		uid, _ := strconv.Atoi(s.runAs.Uid)
		gid, _ := strconv.Atoi(s.runAs.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Dir = s.Dir
	return cmd.CombinedOutput()
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// SuperuserURL is a connection URL for the superuser on database db.
func (s *Server) SuperuserURL(db string) string {
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", s.Addr(), db)
}

// AppURL is a connection URL for AppUser on AppDatabase.
func (s *Server) AppURL() string {
	return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", AppUser, AppPassword, s.Addr(), AppDatabase)
}

// Exec runs SQL (simple protocol, may hold several statements) as the
// superuser on database db.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.SuperuserURL(db))
	if err != nil {
		return fmt.Errorf("pgtest: connect %s: %w", db, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("pgtest: exec: %w", err)
	}
	return nil
}

// Stop stops the server and removes its directory.
func (s *Server) Stop() {
	if s == nil || s.stopped {
		return
	}
	s.stopped = true
	if _, err := os.Stat(filepath.Join(s.Dir, "data", "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		s.run(ctx, "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
		cancel()
	}
	os.RemoveAll(s.Dir)
}
