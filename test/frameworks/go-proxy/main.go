// A reverse proxy built from Go's standard library (net/http/httputil.ReverseProxy) with no
// tracing code: it forwards every request, headers included (traceparent too), to UPSTREAM
// (`/up/<path>` goes to the upstream's `<path>`, also where this service has a route of its own).
// Also a Go client service: /call?url= makes a request with the incoming method and body
// (GET, POST, PUT; STREAM=1 sends the body with chunked encoding) and /test serves the W3C harness.
// `go-proxy PORT UPSTREAM-URL`
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
)

func main() {
	name := os.Getenv("OTEL_SERVICE_NAME")
	up, err := url.Parse(os.Args[2])
	if err != nil {
		panic(err)
	}
	client := &http.Client{}
	mux := http.NewServeMux()
	rp := httputil.NewSingleHostReverseProxy(up)
	mux.Handle("/", rp)
	// /up/<path> reaches the upstream's <path>, also the ones this service answers itself.
	mux.Handle("/up/", http.StripPrefix("/up", rp))
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		// every value, joined: a second traceparent header must show
		json.NewEncoder(w).Encode(map[string]string{"traceparent": strings.Join(r.Header.Values("traceparent"), ","), "tracestate": strings.Join(r.Header.Values("tracestate"), ",")})
	})
	mux.HandleFunc("/call", func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = http.NoBody
		if r.Method != http.MethodGet {
			b, _ := io.ReadAll(r.Body)
			if r.URL.Query().Get("stream") == "1" {
				body = io.MultiReader(bytes.NewReader(b)) // unknown length: chunked
			} else {
				body = bytes.NewReader(b)
			}
		}
		req, err := http.NewRequest(r.Method, r.URL.Query().Get("url"), body)
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
		b, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		fmt.Fprintf(w, "%s -> %s", name, b)
	})
	mux.HandleFunc("POST /test", func(w http.ResponseWriter, r *http.Request) {
		var actions []struct {
			URL       string          `json:"url"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.NewDecoder(r.Body).Decode(&actions); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, a := range actions {
			if resp, err := client.Post(a.URL, "application/json", bytes.NewReader(a.Arguments)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		w.Write([]byte("ok"))
	})
	if err := http.ListenAndServe("127.0.0.1:"+os.Args[1], mux); err != nil {
		panic(err)
	}
}
