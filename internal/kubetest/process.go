package kubetest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// process is one child (etcd or kube-apiserver) in its own process group,
// with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	exited  chan struct{} // closed when Wait returns
	waitErr error         // set before exited is closed
}

// startProcess starts bin in a new process group with Pdeathsig, so that
// neither a test timeout (which exits the test binary without running
// cleanups) nor a crash leaves etcd or kube-apiserver behind.
func startProcess(name, bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("kubetest: %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, exited: make(chan struct{})}
	go p.wait()
	return p, nil
}

func (p *process) wait() {
	p.waitErr = p.cmd.Wait()
	p.logFile.Close()
	close(p.exited)
}

// running reports an error if the process has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited: %v\n%s", p.name, p.waitErr, p.logTail())
	default:
		return nil
	}
}

// stop kills the whole process group and waits (bounded) for the process
// to be reaped. SIGKILL, not SIGTERM: the data lives in a temporary
// directory that is removed next, and kube-apiserver's graceful shutdown
// takes seconds.
func (p *process) stop() error {
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kubetest: kill %s (pgid %d): %w", p.name, pgid, err)
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("kubetest: %s (pid %d) did not exit after SIGKILL", p.name, pgid)
	}
}

// logTail returns the last few kilobytes of the process's log, for
// failure messages.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(%s log: %v)", p.name, err)
	}
	const max = 6 << 10
	if len(b) > max {
		b = append([]byte("…"), b[len(b)-max:]...)
	}
	return fmt.Sprintf("--- %s log (%s) ---\n%s", p.name, p.logPath, b)
}

// Pdeathsig fires when the *thread* that forked the child exits, not the
// process (golang/go#27505). Go only ends a thread when a goroutine locked
// to it returns, so every child is forked from one goroutine that locks
// its thread and never returns; the thread lives as long as the test
// binary. It is the only goroutine in this package without an owner that
// waits for it, by design.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go spawner(spawnReqs)
	})
	r := spawnReq{cmd: cmd, done: make(chan error, 1)}
	spawnReqs <- r
	return <-r.done
}

func spawner(reqs <-chan spawnReq) {
	runtime.LockOSThread()
	for r := range reqs {
		r.done <- r.cmd.Start()
	}
}

// freePorts asks the kernel for n distinct free loopback ports. Another
// process could take one before etcd or kube-apiserver binds it; Start
// retries the whole start-up once when a child exits early.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
