// Command bench measures warden against a direct connection and PgBouncer
// in one run. It starts a throwaway PostgreSQL, PgBouncer (session mode)
// and `warden serve` as separate processes, with a realistic policy (table
// rules, audit on, one masked column), then:
//
//   - interleaves `pgbench -S` runs (simple, extended, prepared) over
//     several rounds and reports medians and the ratios warden/PgBouncer
//     and warden/direct;
//   - measures the latency each path adds per statement at one client
//     (p50, p99, from pgbench's per-transaction log);
//   - measures the cost of masking: a masked-column query beside an
//     unmasked one, through warden;
//   - measures connection set-up time (token verification + upstream
//     login), memory per idle connection, and audit events per second;
//   - measures CPU time per transaction during the TPS runs: the proxy's
//     (PgBouncer, warden), the PostgreSQL server's and pgbench's own;
//   - keeps warden's CPU and allocation profiles.
//
// Run it with `make bench`.
package main

import (
	"bufio"
	"context"
	"database/sql"
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

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

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
	profDir   = flag.String("profiles", "", "write warden's CPU and allocation profiles into this directory")
	syncMode  = flag.String("sync", "fsync", "warden's audit.sync: fsync or os")
	idle      = flag.Int("idle", 2000, "idle connections for the memory measurement")
	connects  = flag.Int("connects", 200, "sequential connections for the set-up time measurement")
	noMask    = flag.Bool("nomask", false, "leave the mask rule out of warden's policy (to isolate its cost)")
	onlyModes = flag.String("modes", "simple,extended,prepared", "pgbench query modes to run")
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

type path struct {
	name string
	host string
	port int
	user string
	db   string
	pw   string
}

func (p path) args() []string {
	return []string{"-h", p.host, "-p", strconv.Itoa(p.port), "-U", p.user, p.db}
}

func (p path) url() string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s password=%s sslmode=disable", p.host, p.port, p.user, p.db, p.pw)
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
	pg, err := pgtest.StartWith(ctx, pgtest.Options{MaxConnections: *idle + 200})
	if err != nil {
		return err
	}
	defer pg.Stop()
	runEnv(nil, "pgbench", "-i", "-q", "-s", strconv.Itoa(*scale), pg.AppURL())
	conn, err := pgx.Connect(ctx, pg.AppURL())
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE mask_bench (id int PRIMARY KEY, name text, email text);
INSERT INTO mask_bench SELECT g, 'name ' || g, 'person' || g || '@example.com' FROM generate_series(1, 10000) g;
ANALYZE mask_bench`, pgx.QueryExecModeSimpleProtocol); err != nil {
		return err
	}
	conn.Close(ctx)

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
	token, err := dev.Mint(issuer, "warden", "bench-agent", map[string]any{"groups": []string{"bench"}}, 4*time.Hour)
	if err != nil {
		return err
	}

	// warden, as its own process, with a realistic policy: table rules,
	// audit on, one masked column.
	wport, _ := pgtest.FreePort()
	cfg := fmt.Sprintf(`listen: { postgres: 127.0.0.1:%d }
store: sqlite://audit.db
audit: { sync: %s }
masking: { hash_key: "bench-hash-key-0123456789abcdef" }
identity:
  oidc: [{ issuer: %s, audience: warden }]
targets:
  - { name: bench, type: postgres, address: %s, database: %s, user: %s, password: %s, sslmode: disable }
policies:
  - name: bench
    when: '"bench" in groups'
    allow:
      - target: bench
        sql: { select: [public.pgbench_accounts, public.pgbench_branches, public.pgbench_tellers, public.mask_bench] }
    deny:
      - target: bench
        sql: { select: [public.pgbench_history] }
%s`, wport, *syncMode, issuer, pg.Addr(), pgtest.AppDatabase, pgtest.AppUser, pgtest.AppPassword, maskRule())
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	wargs := []string{"serve", "--config", cfgPath, "--log-level", "warn"}
	if *profDir != "" {
		abs, _ := filepath.Abs(*profDir)
		os.MkdirAll(abs, 0o755)
		wargs = append(wargs, "--cpuprofile", filepath.Join(abs, "cpu.pprof"), "--memprofile", filepath.Join(abs, "allocs.pprof"))
	}
	w := exec.Command(*wardenBin, wargs...)
	w.Stdout, w.Stderr = os.Stderr, os.Stderr
	if err := w.Start(); err != nil {
		return err
	}
	defer func() {
		// SIGTERM, so warden shuts down cleanly and writes its profiles.
		w.Process.Signal(syscall.SIGTERM)
		w.Wait()
	}()
	waitPort(wport)

	// PgBouncer, session mode, as the postgres user.
	bport, _ := pgtest.FreePort()
	havePgb := false
	pgbPid := 0
	if pgb, err := exec.LookPath("pgbouncer"); err == nil {
		ini := fmt.Sprintf(`[databases]
bench = host=127.0.0.1 port=%d dbname=%s
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
auth_type = plain
auth_file = %s/userlist.txt
pool_mode = session
max_client_conn = 2000
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
			pgbPid = b.Process.Pid
		}
	}

	direct := path{"direct", "127.0.0.1", pg.Port, pgtest.AppUser, pgtest.AppDatabase, pgtest.AppPassword}
	bouncer := path{"pgbouncer", "127.0.0.1", bport, pgtest.AppUser, "bench", pgtest.AppPassword}
	warden := path{"warden", "127.0.0.1", wport, "bench-agent", "bench", token}
	paths := []path{direct}
	if havePgb {
		paths = append(paths, bouncer)
	}
	paths = append(paths, warden)

	auditDB := filepath.Join(dir, "audit.db")
	eventsBefore := auditCount(auditDB)
	var wardenSeconds float64

	// CPU per transaction during the TPS runs, keyed mode/path/process
	// (proxy, postgres, pgbench): µs per transaction, and cores (CPU
	// seconds per second of the run).
	proxyPid := map[string]int{"warden": w.Process.Pid, "pgbouncer": pgbPid}
	postmaster := postmasterPid(pg.Dir)
	cpuTxn := map[string][]float64{}
	cores := map[string][]float64{}

	modes := strings.Split(*onlyModes, ",")
	tps := map[string][]float64{}
	lat := map[string][][]float64{} // per path: p50, p99 per round
	for r := 0; r < *rounds; r++ {
		for _, m := range modes {
			for _, p := range paths {
				args := append([]string{"-n", "-S", "-M", m, "-c", strconv.Itoa(*clients), "-j", "2", "-T", strconv.Itoa(*seconds)}, p.args()...)
				before := snapCPU(proxyPid[p.name], postmaster)
				start := time.Now()
				o, st := runEnv([]string{"PGPASSWORD=" + p.pw}, "pgbench", args...)
				wall := time.Since(start).Seconds()
				after := snapCPU(proxyPid[p.name], postmaster)
				t := parse(o, `tps = ([0-9.]+) \(without initial`)
				tps[m+"/"+p.name] = append(tps[m+"/"+p.name], t)
				if p.name == "warden" {
					wardenSeconds += float64(*seconds)
				}
				fmt.Fprintf(os.Stderr, "round %d %-8s %-9s %10.0f tps\n", r+1, m, p.name, t)
				if n := transactions(o); n > 0 {
					key := m + "/" + p.name + "/"
					var line []string
					add := func(proc string, cpu float64, ok bool) {
						if !ok {
							line = append(line, proc+" n/a")
							return
						}
						cpuTxn[key+proc] = append(cpuTxn[key+proc], cpu/n*1e6)
						cores[key+proc] = append(cores[key+proc], cpu/wall)
						line = append(line, fmt.Sprintf("%s %.1f µs", proc, cpu/n*1e6))
					}
					if p.name != "direct" {
						add("proxy", after.proxy-before.proxy, before.proxyOK && after.proxyOK)
					}
					add("postgres", after.server-before.server, before.serverOK && after.serverOK)
					add("pgbench", (st.UserTime() + st.SystemTime()).Seconds(), true)
					fmt.Fprintf(os.Stderr, "round %d %-8s %-9s CPU/txn: %s\n", r+1, m, p.name, strings.Join(line, ", "))
				}
			}
		}
		// Latency at one client, per statement, from pgbench's log.
		for _, p := range paths {
			p50, p99 := latency(dir, p, max(*seconds/2, 3))
			lat[p.name] = append(lat[p.name], []float64{p50, p99})
			if p.name == "warden" {
				wardenSeconds += float64(max(*seconds/2, 3))
			}
			fmt.Fprintf(os.Stderr, "round %d latency  %-9s p50 %.0f µs p99 %.0f µs\n", r+1, p.name, p50, p99)
		}
	}
	events := auditCount(auditDB) - eventsBefore

	// Masking: a masked-column query beside an unmasked one, through warden.
	maskTPS := map[string][]float64{}
	for r := 0; r < *rounds; r++ {
		for _, q := range []struct{ name, sql string }{
			{"unmasked", "SELECT name FROM mask_bench WHERE id = :id;"},
			{"masked", "SELECT email FROM mask_bench WHERE id = :id;"},
		} {
			script := filepath.Join(dir, q.name+".sql")
			os.WriteFile(script, []byte("\\set id random(1, 10000)\n"+q.sql+"\n"), 0o644)
			args := append([]string{"-n", "-f", script, "-M", "prepared", "-c", strconv.Itoa(*clients), "-j", "2", "-T", strconv.Itoa(*seconds)}, warden.args()...)
			o, _ := runEnv([]string{"PGPASSWORD=" + warden.pw}, "pgbench", args...)
			maskTPS[q.name] = append(maskTPS[q.name], parse(o, `tps = ([0-9.]+) \(without initial`))
		}
	}

	// Connection set-up.
	setup := map[string]time.Duration{}
	for _, p := range paths {
		setup[p.name] = connectTime(p, *connects)
	}

	// Memory per idle connection, warden's resident set.
	rssBefore := rss(w.Process.Pid)
	conns := make([]*pgx.Conn, 0, *idle)
	for i := 0; i < *idle; i++ {
		c, err := pgx.Connect(ctx, warden.url())
		if err != nil {
			fmt.Fprintf(os.Stderr, "idle connection %d: %v\n", i, err)
			break
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second)
	rssAfter := rss(w.Process.Pid)
	for _, c := range conns {
		c.Close(ctx)
	}
	perConn := 0.0
	if len(conns) > 0 {
		perConn = float64(rssAfter-rssBefore) / float64(len(conns))
	}

	// The report.
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, %s. pgbench -S, %d clients, %d s per run, %d rounds interleaved, scale %d; medians. warden audit.sync=%s, audit on, one masked column in the policy.\n\n",
		host, cpus(), time.Now().UTC().Format("2006-01-02"), *clients, *seconds, *rounds, *scale, *syncMode)
	fmt.Fprintf(&b, "| mode | direct TPS | pgbouncer TPS | warden TPS | warden/direct | warden/pgbouncer |\n|---|---|---|---|---|---|\n")
	for _, m := range modes {
		d, pb, wd := median(tps[m+"/direct"]), median(tps[m+"/pgbouncer"]), median(tps[m+"/warden"])
		pbs, rpb := "n/a", "n/a"
		if havePgb {
			pbs, rpb = fmt.Sprintf("%.0f", pb), fmt.Sprintf("%.2f", wd/pb)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.2f | %s |\n", m, d, pbs, wd, wd/d, rpb)
	}
	// CPU per transaction, from the same TPS runs.
	fmt.Fprintf(&b, "\nCPU per transaction during the TPS runs (utime+stime from /proc/<pid>/stat before and after each run: the proxy process; the postmaster with its live and reaped children; pgbench's own from its rusage), divided by the transactions pgbench processed; medians.\n\n")
	fmt.Fprintf(&b, "| mode | pgbouncer CPU/txn | warden CPU/txn | warden/pgbouncer | postgres CPU/txn (direct / via pgbouncer / via warden) | pgbench CPU/txn (direct / pgbouncer / warden) |\n|---|---|---|---|---|---|\n")
	for _, m := range modes {
		k := func(p, proc string) []float64 { return cpuTxn[m+"/"+p+"/"+proc] }
		ratio := "n/a"
		if pb, wd := k("pgbouncer", "proxy"), k("warden", "proxy"); len(pb) > 0 && len(wd) > 0 && median(pb) > 0 {
			ratio = fmt.Sprintf("%.2f", median(wd)/median(pb))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s / %s / %s | %s / %s / %s |\n", m,
			usCell(k("pgbouncer", "proxy"), true), usCell(k("warden", "proxy"), true), ratio,
			usCell(k("direct", "postgres"), false), usCell(k("pgbouncer", "postgres"), false), usCell(k("warden", "postgres"), true),
			usCell(k("direct", "pgbench"), false), usCell(k("pgbouncer", "pgbench"), false), usCell(k("warden", "pgbench"), true))
	}
	fmt.Fprintf(&b, "\n| mode | CPU cores used (of %d): direct | via pgbouncer | via warden |\n|---|---|---|---|\n", cpus())
	for _, m := range modes {
		fmt.Fprintf(&b, "| %s |", m)
		for _, p := range []string{"direct", "pgbouncer", "warden"} {
			fmt.Fprintf(&b, " %s |", coresCell(cores, m+"/"+p+"/", p))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n| latency at 1 client (prepared) | p50 | p99 | added p50 over direct | added p99 over direct |\n|---|---|---|---|---|\n")
	dp50, dp99 := medianOf(lat["direct"], 0), medianOf(lat["direct"], 1)
	for _, p := range paths {
		p50, p99 := medianOf(lat[p.name], 0), medianOf(lat[p.name], 1)
		fmt.Fprintf(&b, "| %s | %.0f µs | %.0f µs | %+.0f µs | %+.0f µs |\n", p.name, p50, p99, p50-dp50, p99-dp99)
	}
	um, mm := median(maskTPS["unmasked"]), median(maskTPS["masked"])
	fmt.Fprintf(&b, "\nMasking (through warden, prepared, %d clients): unmasked column %.0f TPS, masked column %.0f TPS (%.2f×).\n", *clients, um, mm, mm/um)
	fmt.Fprintf(&b, "\nConnection set-up (sequential, mean of %d): ", *connects)
	for i, p := range paths {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f ms", p.name, float64(setup[p.name].Microseconds())/1000)
	}
	fmt.Fprintf(&b, ".\n\nMemory: %d idle connections through warden add %.1f KiB of warden RSS each (%d → %d KiB).\n", len(conns), perConn, rssBefore, rssAfter)
	if wardenSeconds > 0 {
		fmt.Fprintf(&b, "\nAudit: %d events written durably during %.0f s of warden load (%.0f events/s sustained, in the same run).\n", events, wardenSeconds, float64(events)/wardenSeconds)
	}
	fmt.Print(b.String())
	if *out != "" {
		return os.WriteFile(*out, []byte(b.String()), 0o644)
	}
	return nil
}

// latency runs one client for secs seconds with pgbench's per-transaction
// log and returns p50 and p99 in microseconds.
func latency(dir string, p path, secs int) (float64, float64) {
	prefix := filepath.Join(dir, "lat-"+p.name)
	args := append([]string{"-n", "-S", "-M", "prepared", "-c", "1", "-T", strconv.Itoa(secs), "-l", "--log-prefix", prefix}, p.args()...)
	cmd := exec.Command("pgbench", args...)
	cmd.Env = append(os.Environ(), "PGSSLMODE=disable", "PGPASSWORD="+p.pw)
	cmd.Dir = dir
	if o, err := cmd.CombinedOutput(); err != nil {
		fatalf("bench: pgbench latency %s: %v\n%s", p.name, err, o)
	}
	files, _ := filepath.Glob(prefix + ".*")
	var us []float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// client_id transaction_no time script_no time_epoch time_us
			fs := strings.Fields(sc.Text())
			if len(fs) >= 3 {
				if v, err := strconv.ParseFloat(fs[2], 64); err == nil {
					us = append(us, v)
				}
			}
		}
		fh.Close()
		os.Remove(f)
	}
	if len(us) == 0 {
		fatalf("bench: no latency log for %s", p.name)
	}
	sort.Float64s(us)
	return us[len(us)/2], us[len(us)*99/100]
}

func connectTime(p path, n int) time.Duration {
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := pgx.Connect(ctx, p.url())
		if err != nil {
			fatalf("bench: connect %s: %v", p.name, err)
		}
		c.Close(ctx)
	}
	return time.Since(start) / time.Duration(n)
}

func rss(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

func auditCount(path string) int64 {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int64
	db.QueryRow("SELECT count(*) FROM audit_events").Scan(&n)
	return n
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

func medianOf(v [][]float64, i int) float64 {
	col := make([]float64, 0, len(v))
	for _, x := range v {
		col = append(col, x[i])
	}
	return median(col)
}

func parse(out, re string) float64 {
	m := regexp.MustCompile(re).FindStringSubmatch(out)
	if m == nil {
		fatalf("bench: no match for %q in pgbench output:\n%s", re, out)
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

// runEnv runs a command to completion and returns its output and its
// process state (for its CPU time).
func runEnv(env []string, name string, args ...string) (string, *os.ProcessState) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), "PGSSLMODE=disable"), env...)
	o, err := cmd.CombinedOutput()
	if err != nil {
		fatalf("bench: %s %v: %v\n%s", name, args, err, o)
	}
	return string(o), cmd.ProcessState
}

// transactions is the number of transactions pgbench reports, or 0.
func transactions(out string) float64 {
	m := regexp.MustCompile(`number of transactions actually processed: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	return n
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat, from
// `getconf CLK_TCK`; 100 when that fails.
var clockTicks = func() float64 {
	o, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(o)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}()

// procStat is the part of /proc/<pid>/stat the CPU measurement needs.
type procStat struct {
	ppid     int
	self     float64 // utime+stime (fields 14, 15), seconds
	children float64 // cutime+cstime (fields 16, 17): reaped children, seconds
}

func readStat(pid int) (procStat, bool) {
	if pid <= 0 {
		return procStat{}, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after it start with field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, false
	}
	field := func(n int) float64 { v, _ := strconv.ParseFloat(f[n-3], 64); return v }
	ppid, _ := strconv.Atoi(f[4-3])
	return procStat{
		ppid:     ppid,
		self:     (field(14) + field(15)) / clockTicks,
		children: (field(16) + field(17)) / clockTicks,
	}, true
}

// serverCPU is the CPU time used so far by a PostgreSQL server: the
// postmaster's own, its reaped children's (backends that have exited),
// and that of every live child. A backend reaped during the scan of /proc
// would be missed or counted twice, so the scan is repeated until the
// postmaster's reaped-children time holds still across it.
func serverCPU(postmaster int) (float64, bool) {
	for try := 0; try < 20; try++ {
		pm, ok := readStat(postmaster)
		if !ok {
			return 0, false
		}
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return 0, false
		}
		live := 0.0
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == postmaster {
				continue
			}
			if s, ok := readStat(pid); ok && s.ppid == postmaster {
				live += s.self
			}
		}
		pm2, ok := readStat(postmaster)
		if !ok {
			return 0, false
		}
		if pm2.children == pm.children {
			return pm2.self + pm2.children + live, true
		}
	}
	return 0, false
}

// postmasterPid reads the first line of the data directory's
// postmaster.pid; 0 when it cannot.
func postmasterPid(pgDir string) int {
	b, err := os.ReadFile(filepath.Join(pgDir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// cpuSnap is the CPU time, in seconds, used so far by a proxy process and
// by the PostgreSQL server; ok false for what could not be read.
type cpuSnap struct {
	proxy, server     float64
	proxyOK, serverOK bool
}

func snapCPU(proxyPid, postmaster int) cpuSnap {
	var c cpuSnap
	if s, ok := readStat(proxyPid); ok {
		c.proxy, c.proxyOK = s.self, true
	}
	c.server, c.serverOK = serverCPU(postmaster)
	return c
}

// usCell is the median of v in µs, or n/a.
func usCell(v []float64, unit bool) string {
	if len(v) == 0 {
		return "n/a"
	}
	if unit {
		return fmt.Sprintf("%.1f µs", median(v))
	}
	return fmt.Sprintf("%.1f", median(v))
}

// coresCell sums the median cores used by postgres, the proxy and pgbench
// on one path; a part that could not be measured reads n/a and leaves the
// total out.
func coresCell(cores map[string][]float64, key, path string) string {
	procs := []string{"postgres", "proxy", "pgbench"}
	if path == "direct" {
		procs = []string{"postgres", "pgbench"}
	}
	var parts []string
	total, complete := 0.0, true
	for _, proc := range procs {
		name := proc
		if proc == "proxy" {
			name = path
		}
		v := cores[key+proc]
		if len(v) == 0 {
			parts = append(parts, name+" n/a")
			complete = false
			continue
		}
		total += median(v)
		parts = append(parts, fmt.Sprintf("%s %.2f", name, median(v)))
	}
	if !complete {
		return strings.Join(parts, " + ")
	}
	return fmt.Sprintf("%s = %.2f", strings.Join(parts, " + "), total)
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

func maskRule() string {
	if *noMask {
		return ""
	}
	return `    mask:
      - target: bench
        columns: [public.mask_bench.email]
        style: redact
`
}
