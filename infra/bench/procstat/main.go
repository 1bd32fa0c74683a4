// Command procstat prints what the kernel has accounted so far to the given
// processes (summed): CPU time and run-queue wait, for run.sh to take
// differences around a measurement.
//
//	procstat PID...   →   cpu_ns=… runqueue_ns=…
package main

import (
	"fmt"
	"log"
	"os"
	"strconv"

	"github.com/keywaygw/keyway/infra/bench/internal/cli"
)

func main() {
	var pids []int
	for _, a := range os.Args[1:] {
		pid, err := strconv.Atoi(a)
		if err != nil {
			log.Fatalf("procstat: %q is not a PID", a)
		}
		pids = append(pids, pid)
	}
	s, err := cli.ReadProcStat(pids...)
	if err != nil {
		log.Fatalf("procstat: %v", err)
	}
	fmt.Printf("cpu_ns=%d\nrunqueue_ns=%d\n", s.CPUns, s.RunQueueNs)
}
