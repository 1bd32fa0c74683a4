package awstest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keywaygw/keyway/shared/testnet"
)

// readyTimeout bounds how long one moto server start may take.
const readyTimeout = 30 * time.Second

// process is a running moto server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *tail
}

// launcher is one way to run moto server on 127.0.0.1:port.
type launcher struct {
	desc string
	argv func(port string) []string
}

var launchers = []launcher{
	{"moto_server", func(port string) []string { return []string{"moto_server", "-H", "127.0.0.1", "-p", port} }},
	{"python3 -m moto.server", func(port string) []string {
		return []string{"python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", port}
	}},
}

var installOnce struct {
	sync.Once
	err error
}

// startProcess starts moto server on port, trying each launcher, and
// installing moto with pip when none works. The error says what was tried
// and why each attempt failed.
func startProcess(port int) (*process, error) {
	var why []string
	try := func() *process {
		for _, l := range launchers {
			p, err := launch(l.argv(strconv.Itoa(port)), port)
			if err == nil {
				return p
			}
			why = append(why, fmt.Sprintf("%s: %v", l.desc, err))
		}
		return nil
	}
	if p := try(); p != nil {
		return p, nil
	}
	if testnet.AddrInUse(strings.Join(why, "\n")) { // moto is there; the port is not
		return nil, fmt.Errorf("moto server could not bind port %d:\n  %s", port, strings.Join(why, "\n  "))
	}
	installOnce.Do(func() { installOnce.err = pipInstall() })
	if installOnce.err != nil {
		why = append(why, fmt.Sprintf("pip install 'moto[server]': %v", installOnce.err))
		return nil, fmt.Errorf("cannot start moto server (needed for the DynamoDB/SSM tests):\n  %s", strings.Join(why, "\n  "))
	}
	if p := try(); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("cannot start moto server even after pip install (needed for the DynamoDB/SSM tests):\n  %s", strings.Join(why, "\n  "))
}

func pipInstall() error {
	if _, err := exec.LookPath("python3"); err != nil {
		return fmt.Errorf("python3 not on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fmt.Fprintln(os.Stderr, "awstest: moto server not found; running python3 -m pip install 'moto[server]'")
	out, err := exec.CommandContext(ctx, "python3", "-m", "pip", "install", "--quiet", "moto[server]").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLines(out, 5))
	}
	return nil
}

func launch(argv []string, port int) (*process, error) {
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("not on PATH")
	}
	p := &process{cmd: exec.Command(argv[0], argv[1:]...), exited: make(chan struct{}), out: &tail{}}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.exited) }()
	url := fmt.Sprintf("http://127.0.0.1:%d/moto-api/", port)
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("exited before it was ready (%v): %s", p.cmd.ProcessState, lastLines(p.out.bytes(), 5))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("not ready on port %d after %s: %s", port, readyTimeout, lastLines(p.out.bytes(), 5))
		}
	}
}

// stop ends the server: SIGTERM to its process group, SIGKILL after 3s.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	terminate(p.cmd)
	select {
	case <-p.exited:
	case <-time.After(3 * time.Second):
		kill(p.cmd)
		<-p.exited
	}
}

// tail keeps the last 8 KiB written to it: moto's log, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - 8192; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := strings.Join(lines, " | ")
	if s == "" {
		return "(no output)"
	}
	return s
}
