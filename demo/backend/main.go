// demo-backend: a plain net/http service with no tracing code; some items are slow, one fails.
package main

import (
	"fmt"
	"log"
	"math/rand"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := os.Getenv("BACKEND_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /price/{item}", func(w http.ResponseWriter, r *http.Request) {
		item := r.PathValue("item")
		time.Sleep(time.Duration(2+rand.Intn(8)) * time.Millisecond)
		if item == "unicorn" {
			http.Error(w, "price service failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d.99", 1+len(item))
	})
	mux.HandleFunc("GET /stock/{item}", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(1+rand.Intn(4)) * time.Millisecond)
		fmt.Fprintf(w, "%d", rand.Intn(100))
	})
	log.Printf("demo-backend on %s", addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}
