/**
 * The reference Go program whose DWARF gives the offsets table. It is only built, never run: it
 * must merely link every struct in GO_STRUCT_FIELDS (an HTTP server for net/http.response, a
 * Transport for persistConn and Response, textproto for Reader, bufio for Writer).
 * `go 1.21` in go.mod: the oldest toolchain the table covers must accept it.
 */
export const REFERENCE_GO_MOD = `module spanbridge.example/offsetsref

go 1.21
`;

export const REFERENCE_MAIN_GO = `package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strings"
)

func main() {
	tp := textproto.NewReader(bufio.NewReader(strings.NewReader("A: b\\r\\n\\r\\n")))
	h, err := tp.ReadMIMEHeader()
	fmt.Println(h, err)
	w := bufio.NewWriter(os.Stdout)
	u, _ := url.Parse("http://localhost/x?y=1")
	fmt.Fprintln(w, u.Scheme, u.Host, u.Path, u.RawQuery)
	w.Flush()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		rw.WriteHeader(http.StatusNoContent)
		fmt.Fprint(rw, r.Method, r.Host, r.RemoteAddr, r.Proto, r.ContentLength)
	})
	if len(os.Args) > 1 {
		go http.ListenAndServe(os.Args[1], mux)
		c := &http.Client{Transport: &http.Transport{}}
		resp, err := c.Get("http://" + os.Args[1] + "/")
		if err == nil {
			fmt.Println(resp.StatusCode, resp.ContentLength)
			resp.Body.Close()
		}
	}
}
`;
