module spanbridge.test/go-proxy

go 1.23
