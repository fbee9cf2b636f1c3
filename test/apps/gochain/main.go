// A Go frontend with no tracing code that calls another service in the ways real code does:
// synchronously, from a spawned goroutine (and a grandchild goroutine), with its own traceparent,
// with a malformed one, and with very large headers. It returns what the backend answered
// (the backend echoes the headers it received), so tests can see what went over the wire.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var client = &http.Client{Timeout: 5 * time.Second}

func call(target string, hdr map[string]string) (string, error) {
	req, err := http.NewRequest("GET", target, nil)
	if err != nil {
		return "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func reply(w http.ResponseWriter, body string, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	io.WriteString(w, body)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sync", func(w http.ResponseWriter, r *http.Request) {
		body, err := call(r.URL.Query().Get("target"), nil)
		reply(w, body, err)
	})
	mux.HandleFunc("GET /async", func(w http.ResponseWriter, r *http.Request) {
		var body string
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			body, err = call(r.URL.Query().Get("target"), nil)
		}()
		<-done
		reply(w, body, err)
	})
	mux.HandleFunc("GET /nested", func(w http.ResponseWriter, r *http.Request) {
		var body string
		var err error
		done := make(chan struct{})
		go func() {
			inner := make(chan struct{})
			go func() {
				defer close(inner)
				body, err = call(r.URL.Query().Get("target"), nil)
			}()
			<-inner
			close(done)
		}()
		<-done
		reply(w, body, err)
	})
	mux.HandleFunc("GET /app-tp", func(w http.ResponseWriter, r *http.Request) {
		body, err := call(r.URL.Query().Get("target"), map[string]string{"Traceparent": r.URL.Query().Get("tp")})
		reply(w, body, err)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("size"))
		body, err := call(r.URL.Query().Get("target"), map[string]string{"X-Big": strings.Repeat("b", n)})
		reply(w, body, err)
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		// A transport error: nothing listens there.
		body, err := call(r.URL.Query().Get("target"), nil)
		reply(w, body, err)
	})
	log.Printf("gochain on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
