// microbench: timed loops for spanbridge's benchmarks, run in one long-lived process so rounds
// with and without the agent compare the same process. Reads commands from stdin, one per line,
// and answers each with one JSON line on stdout:
//
//	run MS   time the loop for MS milliseconds -> {"ops":N,"nsPerOp":X,"cpuNsPerOp":Y}
//	         (nsPerOp: wall clock; cpuNsPerOp: the process's user + system CPU time, which other
//	         processes taking the CPU away do not inflate; syscall tracepoints and their BPF
//	         programs run in the process's own system time)
//
// Modes (first argument):
//
//	floor    textproto.Reader.ReadMIMEHeader on a request head of -headers lines: with the agent
//	         attached, every line (and the blank line that ends the head) hits one uprobe on a RET
//	         of readContinuedLineSlice, so (with - without) / (headers + 1) is the cost of one hit.
//	         Also serves net/http on 127.0.0.1:0 so the binary has what the agent attaches to.
//	sysloop  write(2) one byte and read(2) it back on a Unix socketpair: two syscalls per op, both
//	         of types the agent hooks (3 of its programs run: write at entry and exit, read at
//	         exit), in a process the agent does not select.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	headers := flag.Int("headers", 8, "header lines per head (floor)")
	flag.Parse()
	var loop func(deadline time.Time) int
	switch flag.Arg(0) {
	case "floor":
		loop = floorLoop(*headers)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	case "sysloop":
		loop = sysLoop()
	default:
		fmt.Fprintln(os.Stderr, "usage: microbench [-headers N] floor|sysloop")
		os.Exit(2)
	}
	fmt.Println(`{"ready":true}`)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 2 || f[0] != "run" {
			continue
		}
		ms, _ := strconv.Atoi(f[1])
		cpu0 := cpuNs()
		start := time.Now()
		ops := loop(start.Add(time.Duration(ms) * time.Millisecond))
		el := time.Since(start)
		cpu := cpuNs() - cpu0
		json.NewEncoder(os.Stdout).Encode(map[string]float64{"ops": float64(ops), "nsPerOp": float64(el.Nanoseconds()) / float64(ops), "cpuNsPerOp": float64(cpu) / float64(ops)})
	}
}

// cpuNs: user + system CPU time of the whole process so far (getrusage), in ns.
func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func floorLoop(headers int) func(time.Time) int {
	var head bytes.Buffer
	for i := 0; i < headers; i++ {
		fmt.Fprintf(&head, "X-Bench-%d: value-%d\r\n", i, i)
	}
	head.WriteString("\r\n")
	data := head.Bytes()
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, 4096)
	return func(deadline time.Time) int {
		ops := 0
		for {
			for i := 0; i < 256; i++ {
				src.Reset(data)
				br.Reset(src)
				if _, err := textproto.NewReader(br).ReadMIMEHeader(); err != nil {
					panic(err)
				}
			}
			ops += 256
			if time.Now().After(deadline) {
				return ops
			}
		}
	}
}

func sysLoop() func(time.Time) int {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	b := []byte{1}
	return func(deadline time.Time) int {
		ops := 0
		for {
			for i := 0; i < 1024; i++ {
				if _, err := syscall.Write(fds[0], b); err != nil {
					panic(err)
				}
				if _, err := syscall.Read(fds[1], b); err != nil {
					panic(err)
				}
			}
			ops += 1024
			if time.Now().After(deadline) {
				return ops
			}
		}
	}
}
