//go:build !linux

package prom

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
