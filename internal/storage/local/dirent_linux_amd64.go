package local

import "syscall"

const sysFstatat = syscall.SYS_NEWFSTATAT
