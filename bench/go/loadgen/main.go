// loadgen: an open-loop HTTP/1.1 load generator at a fixed request rate (wrk2's method), for
// spanbridge's benchmarks. Each of -conns keep-alive connections owns every conns-th slot of the
// schedule (slot k is due at start + k/rate); a connection that falls behind sends at once, and the
// latency of a request is measured from its due time (coordinated omission corrected) as well as
// from its actual send time. Every latency is kept (no histogram bucketing: exact percentiles).
// With -duration, sending stops at the end of the window plus -grace: requests still unsent then
// are counted (unsent) and recorded with their lateness so far as a lower bound of their latency,
// so an overloaded server cannot hide behind a shorter sample or stretch the run.
// Prints one JSON object on stdout.
//
//	loadgen -addr 127.0.0.1:8080 -path /items/1 -rate 5000 -duration 10s -conns 16
//	loadgen -addr 127.0.0.1:8080 -requests 2000 -rate 1000   (stop after exactly N requests)
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

type result struct {
	Requests   int                `json:"requests"`
	Unsent     int                `json:"unsent"`
	Errors     int                `json:"errors"`
	Seconds    float64            `json:"seconds"`
	Rate       float64            `json:"achievedRate"`
	Corrected  map[string]float64 `json:"correctedUs"`
	Service    map[string]float64 `json:"serviceUs"`
	LateP99Us  float64            `json:"lateP99Us"`
	FirstError string             `json:"firstError,omitempty"`
}

type worker struct {
	corrected, service, late []time.Duration
	errors, unsent           int
	firstErr                 string
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server host:port")
	path := flag.String("path", "/", "request path")
	rate := flag.Float64("rate", 1000, "requests per second (all connections together)")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	requests := flag.Int("requests", 0, "stop after this many requests instead (0: use -duration)")
	conns := flag.Int("conns", 16, "keep-alive connections")
	grace := flag.Duration("grace", time.Second, "with -duration: stop sending this long after the window")
	flag.Parse()

	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: spanbridge-bench\r\n\r\n", *path, *addr))
	interval := time.Duration(float64(time.Second) / *rate)
	total := *requests
	if total == 0 {
		total = int(duration.Seconds() * *rate)
	}
	workers := make([]*worker, *conns)
	var wg sync.WaitGroup
	start := time.Now().Add(50 * time.Millisecond)
	stopAt := time.Time{}
	if *requests == 0 {
		stopAt = start.Add(*duration + *grace)
	}
	for i := range workers {
		w := &worker{}
		workers[i] = w
		wg.Add(1)
		go func(first int) {
			defer wg.Done()
			w.run(*addr, req, start, stopAt, interval, first, *conns, total)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)

	var corrected, service, late []time.Duration
	res := result{Seconds: elapsed.Seconds()}
	for _, w := range workers {
		corrected = append(corrected, w.corrected...)
		service = append(service, w.service...)
		late = append(late, w.late...)
		res.Errors += w.errors
		res.Unsent += w.unsent
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
	}
	res.Requests = len(service)
	res.Rate = float64(res.Requests) / elapsed.Seconds()
	res.Corrected = percentiles(corrected)
	res.Service = percentiles(service)
	res.LateP99Us = percentiles(late)["p99"]
	json.NewEncoder(os.Stdout).Encode(res)
}

func (w *worker) fail(err error) {
	w.errors++
	if w.firstErr == "" {
		w.firstErr = err.Error()
	}
}

func (w *worker) run(addr string, req []byte, start, stopAt time.Time, interval time.Duration, first, step, total int) {
	var conn net.Conn
	var br *bufio.Reader
	for k := first; k < total; k += step {
		due := start.Add(time.Duration(k) * interval)
		if now := time.Now(); !stopAt.IsZero() && now.After(stopAt) {
			for ; k < total; k += step {
				if d := start.Add(time.Duration(k) * interval); now.After(d) {
					w.corrected = append(w.corrected, now.Sub(d))
					w.unsent++
				}
			}
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if conn == nil {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				w.fail(err)
				continue
			}
			conn, br = c, bufio.NewReaderSize(c, 16<<10)
		}
		sent := time.Now()
		if _, err := conn.Write(req); err != nil {
			w.fail(err)
			conn.Close()
			conn = nil
			continue
		}
		if err := readResponse(br); err != nil {
			w.fail(err)
			conn.Close()
			conn = nil
			continue
		}
		done := time.Now()
		w.corrected = append(w.corrected, done.Sub(due))
		w.service = append(w.service, done.Sub(sent))
		w.late = append(w.late, sent.Sub(due))
	}
	if conn != nil {
		conn.Close()
	}
}

// readResponse reads one HTTP/1.1 response with a Content-Length or chunked body.
func readResponse(br *bufio.Reader) error {
	length, chunked := -1, false
	status := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if status {
			if !bytes.HasPrefix(line, []byte("HTTP/1.")) {
				return fmt.Errorf("bad status line %q", line)
			}
			status = false
			continue
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			length, _ = strconv.Atoi(string(v))
		case bytes.EqualFold(k, []byte("Transfer-Encoding")) && bytes.EqualFold(v, []byte("chunked")):
			chunked = true
		}
	}
	if chunked {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.SplitN(line, []byte(";"), 2)[0])), 16, 64)
			if err != nil {
				return err
			}
			if _, err := br.Discard(int(n) + 2); err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("response without Content-Length")
	}
	_, err := io.CopyN(io.Discard, br, int64(length))
	return err
}

func percentiles(d []time.Duration) map[string]float64 {
	out := map[string]float64{}
	if len(d) == 0 {
		return out
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		i := int(q * float64(len(d)-1))
		return float64(d[i].Nanoseconds()) / 1e3
	}
	out["p50"], out["p90"], out["p99"], out["p999"], out["max"] = at(0.5), at(0.9), at(0.99), at(0.999), at(1)
	return out
}
