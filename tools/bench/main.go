// Command bench measures warden against a direct connection and PgBouncer
// in one run: it starts a throwaway PostgreSQL, PgBouncer (session mode)
// and `warden serve` as separate processes, then interleaves `pgbench -S`
// runs (simple, extended, prepared) over several rounds and reports medians
// and ratios. Run it with `make bench`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-gateway/warden/internal/identity"
	"github.com/warden-gateway/warden/internal/pgtest"
)

var (
	wardenBin = flag.String("warden", "bin/warden", "warden binary")
	seconds   = flag.Int("T", 10, "seconds per pgbench run")
	rounds    = flag.Int("rounds", 3, "rounds (each runs every mode against every path)")
	clients   = flag.Int("c", 8, "pgbench clients")
	scale     = flag.Int("s", 5, "pgbench scale")
	out       = flag.String("o", "", "also write a Markdown report to this file")
	profile   = flag.String("cpuprofile", "", "write warden's CPU profile here")
)

func main() {
	flag.Parse()
	if err := run(); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// fatalf ends the run through the deferred clean-ups of run.
type fatalError struct{ error }

func fatalf(format string, args ...any) {
	panic(fatalError{fmt.Errorf(format, args...)})
}

func run() (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fe.error
		}
	}()
	ctx := context.Background()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		return err
	}
	defer pg.Stop()
	runEnv(nil, "pgbench", "-i", "-q", "-s", strconv.Itoa(*scale), pg.AppURL())

	dir, _ := os.MkdirTemp("", "warden-bench-")
	os.Chmod(dir, 0o755)
	defer os.RemoveAll(dir)
	var runAs *syscall.Credential
	if os.Geteuid() == 0 {
		// PgBouncer, like PostgreSQL, runs as the unprivileged user.
		u, err := user.Lookup("postgres")
		if err != nil {
			return err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		runAs = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		os.Chown(dir, uid, gid)
	}

	// Development issuer on loopback.
	dev, err := identity.LoadOrCreateDevKey(filepath.Join(dir, "dev.pem"))
	if err != nil {
		return err
	}
	iln, _ := net.Listen("tcp", "127.0.0.1:0")
	issuer := "http://" + iln.Addr().String()
	go http.Serve(iln, dev.Handler(issuer))
	token, err := dev.Mint(issuer, "warden", "bench-agent", map[string]any{"groups": []string{"bench"}}, 2*time.Hour)
	if err != nil {
		return err
	}

	// warden, as its own process, with audit on.
	wport, _ := pgtest.FreePort()
	cfg := fmt.Sprintf(`listen: { postgres: 127.0.0.1:%d }
store: sqlite://audit.db
identity:
  oidc: [{ issuer: %s, audience: warden }]
targets:
  - { name: bench, type: postgres, address: %s, database: %s, user: %s, password: %s, sslmode: disable }
policies:
  - name: bench
    when: '"bench" in groups'
    allow:
      - target: bench
        sql: { select: [public.pgbench_accounts, public.pgbench_branches, public.pgbench_tellers] }
`, wport, issuer, pg.Addr(), pgtest.AppDatabase, pgtest.AppUser, pgtest.AppPassword)
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	wargs := []string{"serve", "--config", cfgPath, "--log-level", "warn"}
	if *profile != "" {
		abs, _ := filepath.Abs(*profile)
		wargs = append(wargs, "--cpuprofile", abs)
	}
	w := exec.Command(*wardenBin, wargs...)
	w.Stdout, w.Stderr = os.Stderr, os.Stderr
	if err := w.Start(); err != nil {
		return err
	}
	defer func() {
		// SIGTERM, so warden shuts down cleanly and writes its profile.
		w.Process.Signal(syscall.SIGTERM)
		w.Wait()
	}()
	waitPort(wport)

	// PgBouncer, session mode, as the postgres user.
	bport, _ := pgtest.FreePort()
	havePgb := false
	if pgb, err := exec.LookPath("pgbouncer"); err == nil {
		ini := fmt.Sprintf(`[databases]
bench = host=127.0.0.1 port=%d dbname=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
auth_type = plain
auth_file = %s/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 50
unix_socket_dir =
logfile = %s/pgbouncer.log
log_connections = 0
log_disconnections = 0
`, pg.Port, pgtest.AppDatabase, bport, dir, dir)
		os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o644)
		os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(fmt.Sprintf("%q %q\n", pgtest.AppUser, pgtest.AppPassword)), 0o644)
		b := exec.Command(pgb, filepath.Join(dir, "pgbouncer.ini"))
		if runAs != nil {
			b.SysProcAttr = &syscall.SysProcAttr{Credential: runAs}
		}
		if err := b.Start(); err == nil {
			defer b.Process.Kill()
			waitPort(bport)
			havePgb = true
		}
	}

	type path struct {
		name string
		args []string
		env  []string
	}
	paths := []path{
		{"direct", []string{"-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", pgtest.AppUser, pgtest.AppDatabase}, []string{"PGPASSWORD=" + pgtest.AppPassword}},
	}
	if havePgb {
		paths = append(paths, path{"pgbouncer", []string{"-h", "127.0.0.1", "-p", strconv.Itoa(bport), "-U", pgtest.AppUser, "bench"}, []string{"PGPASSWORD=" + pgtest.AppPassword}})
	}
	paths = append(paths, path{"warden", []string{"-h", "127.0.0.1", "-p", strconv.Itoa(wport), "-U", "bench-agent", "bench"}, []string{"PGPASSWORD=" + token}})

	modes := []string{"simple", "extended", "prepared"}
	tps := map[string][]float64{}
	lat := map[string][]float64{}
	for r := 0; r < *rounds; r++ {
		for _, m := range modes {
			for _, p := range paths {
				args := append([]string{"-n", "-S", "-M", m, "-c", strconv.Itoa(*clients), "-j", "2", "-T", strconv.Itoa(*seconds)}, p.args...)
				o := runEnv(p.env, "pgbench", args...)
				t := parse(o, `tps = ([0-9.]+) \(without initial`)
				tps[m+"/"+p.name] = append(tps[m+"/"+p.name], t)
				fmt.Fprintf(os.Stderr, "round %d %-8s %-9s %10.0f tps\n", r+1, m, p.name, t)
			}
		}
		// Latency at one client (average, from pgbench), per path.
		for _, p := range paths {
			args := append([]string{"-n", "-S", "-M", "prepared", "-c", "1", "-T", strconv.Itoa(max(*seconds/2, 2))}, p.args...)
			o := runEnv(p.env, "pgbench", args...)
			lat[p.name] = append(lat[p.name], parse(o, `latency average = ([0-9.]+) ms`))
		}
	}

	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "pgbench -S, %d clients, %d s per run, %d rounds interleaved, scale %d; medians. Host %s, %d CPUs, %s.\n\n",
		*clients, *seconds, *rounds, *scale, host, cpus(), time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "| mode | direct TPS | pgbouncer TPS | warden TPS | warden/direct | warden/pgbouncer |\n|---|---|---|---|---|---|\n")
	for _, m := range modes {
		d, pb, wd := median(tps[m+"/direct"]), median(tps[m+"/pgbouncer"]), median(tps[m+"/warden"])
		pbs, rpb := "n/a", "n/a"
		if havePgb {
			pbs, rpb = fmt.Sprintf("%.0f", pb), fmt.Sprintf("%.2f", wd/pb)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.2f | %s |\n", m, d, pbs, wd, wd/d, rpb)
	}
	fmt.Fprintf(&b, "\nLatency at 1 client (prepared, average): direct %.3f ms, warden %.3f ms, added %.0f µs",
		median(lat["direct"]), median(lat["warden"]), 1000*(median(lat["warden"])-median(lat["direct"])))
	if havePgb {
		fmt.Fprintf(&b, ", pgbouncer %.3f ms", median(lat["pgbouncer"]))
	}
	b.WriteString(".\n")
	fmt.Print(b.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

func cpus() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func parse(out, re string) float64 {
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		fatalf("bench: no match for %q in pgbench output:\n%s", re, out)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

func runEnv(env []string, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "PGSSLMODE=disable"), env...)
	o, err := cmd.CombinedOutput()
	if err != nil {
		fatalf("bench: %s %v: %v\n%s", name, args, err, o)
	}
	return string(o)
}

func waitPort(port int) {
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatalf("bench: port %d never opened", port)
}
