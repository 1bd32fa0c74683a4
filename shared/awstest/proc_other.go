//go:build !linux

package awstest

import (
	"os"
	"os/exec"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func terminate(c *exec.Cmd) { _ = c.Process.Signal(os.Interrupt) }
func kill(c *exec.Cmd)      { _ = c.Process.Kill() }
