// demo-loadgen: steady, bounded traffic to the demo frontend (loopback only).
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"time"
)

func main() {
	target := flag.String("target", "http://127.0.0.1:8080", "frontend base URL (loopback)")
	rate := flag.Int("rate", 2, "requests per second")
	duration := flag.Duration("duration", time.Hour, "stop after this long")
	flag.Parse()
	items := []string{"apple", "banana", "cherry", "unicorn", "durian"}
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	deadline := time.Now().Add(*duration)
	for i := 0; time.Now().Before(deadline); i++ {
		<-tick.C
		resp, err := client.Get(*target + "/shop/" + items[i%len(items)])
		if err != nil {
			log.Printf("loadgen: %v", err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
