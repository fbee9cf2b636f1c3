// chain: a net/http server that calls one downstream per request, for spanbridge's benchmarks (a
// Go server calling one downstream, issue 15). Each request to /<path> makes a GET of
// DOWNSTREAM/<path> with the standard library's client and answers with the downstream's status
// and body. No tracing code.
//
// The transport keeps up to 256 idle connections per host: http.DefaultTransport keeps 2, so under
// 32 concurrent requests most calls would dial a new connection and the benchmark would measure
// connect() and TIME_WAIT rather than tracing. Production services raise this limit for the same
// reason.
//
//	PORT=8081 DOWNSTREAM=http://127.0.0.1:8080 chain
package main

import (
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func main() {
	downstream := os.Getenv("DOWNSTREAM")
	if downstream == "" {
		log.Fatal("chain: DOWNSTREAM is not set")
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, downstream+r.URL.RequestURI(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	})
	addr := "127.0.0.1:" + os.Getenv("PORT")
	log.Printf("chain on %s -> %s", addr, downstream)
	log.Fatal(http.ListenAndServe(addr, nil))
}
