package prom

import "syscall"

// sysProcAttr makes the kernel kill Prometheus when the test binary dies
// without running its cleanups (a panic, a -timeout, SIGKILL).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
