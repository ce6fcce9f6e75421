package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel kill an imxd when imxbench dies, even by
// SIGKILL, so that no server outlives its benchmark.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
