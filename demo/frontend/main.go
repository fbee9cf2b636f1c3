// demo-frontend: a plain net/http service with no tracing code. It serves /shop/{item} and calls
// the backend for each request (synchronously, and once from a goroutine), and, when REVIEWS_URL
// is set, the Python reviews service (demo/reviews), so traces span services and languages.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"
)

func env(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func main() {
	addr := env("FRONTEND_ADDR", "127.0.0.1:8080")
	backend := env("BACKEND_URL", "http://127.0.0.1:8081")
	reviews := os.Getenv("REVIEWS_URL")
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(url string) (int, string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	call := func(path string) (int, string, error) { return get(backend + path) }
	mux := http.NewServeMux()
	mux.HandleFunc("GET /shop/{item}", func(w http.ResponseWriter, r *http.Request) {
		item := r.PathValue("item")
		status, price, err := call("/price/" + item)
		if err != nil {
			http.Error(w, "backend unavailable: "+err.Error(), http.StatusBadGateway)
			return
		}
		done := make(chan struct{})
		go func() { // an async call made from a goroutine the handler spawned
			defer close(done)
			call("/stock/" + item)
		}()
		<-done
		if reviews != "" {
			get(reviews + "/reviews/" + item) // best effort: the page works without reviews
		}
		if status != http.StatusOK {
			http.Error(w, "no price", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "%s costs %s\n", item, price)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	log.Printf("demo-frontend on %s -> %s", addr, backend)
	log.Fatal(http.ListenAndServe(addr, mux))
}
