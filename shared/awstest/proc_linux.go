package awstest

import (
	"os/exec"
	"syscall"
)

// sysProcAttr puts moto in its own process group (so stop reaches the
// python child of a launcher script) and kills it if the test binary dies
// without running Main's cleanup.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(c *exec.Cmd) { _ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM) }
func kill(c *exec.Cmd)      { _ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
