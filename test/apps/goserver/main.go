// A plain net/http service with no tracing code, used by spanbridge's integration tests.
// Routes use Go 1.22 ServeMux patterns so Request.Pattern (Go >= 1.23) carries the route.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func sleepFromQuery(r *http.Request) {
	if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil && ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	tlsAddr := flag.String("tls-addr", "", "also serve HTTPS here (self-signed certificate)")
	flag.Parse()
	if p := os.Getenv("PORT"); p != "" {
		*addr = "127.0.0.1:" + p
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		sleepFromQuery(r)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q}`, r.PathValue("id"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		sleepFromQuery(r)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("created"))
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		sleepFromQuery(r)
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /headers", func(w http.ResponseWriter, r *http.Request) {
		sleepFromQuery(r)
		for k, v := range r.Header {
			fmt.Fprintf(w, "%s: %s\n", strings.ToLower(k), strings.Join(v, ","))
		}
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		sleepFromQuery(r)
		w.Write([]byte("ok\n"))
	})
	if *tlsAddr != "" {
		srv := &http.Server{Addr: *tlsAddr, Handler: mux, TLSConfig: selfSignedTLS()}
		go func() { log.Fatal(srv.ListenAndServeTLS("", "")) }()
	}
	log.Printf("goserver listening on %s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
